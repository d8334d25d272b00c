"""Prompted LFs: a prompt template over item fields, and a verbaliser from answers to votes.

A prompted LF (Smith et al. 2022) asks a language model one question about an item and maps the
normalised answer to a class id or an abstain. Only the answers listed in ``answers`` (and their
synonyms) can produce a vote: whatever else a model says, including text an item smuggled into the
prompt, is an abstain and is counted as unmatched.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from thresher.labeling.lf.base import ABSTAIN

# Built-in synonyms for the two most common answers; a prompt's own synonyms are added to these.
DEFAULT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "yes": ("y", "yeah", "yep", "true", "correct", "it does", "it is"),
    "no": ("n", "nope", "false", "incorrect", "it does not", "it is not", "it doesn't", "it isn't"),
}
_CLAUSE_END = re.compile(r"[.,;:!?\n]")
_PUNCTUATION = re.compile(r"[^\w\s']")


def normalise_answer(answer: str) -> str:
    """Case-fold, NFKC-normalise, turn punctuation into spaces and collapse whitespace.

    >>> normalise_answer("  Yes!! ")
    'yes'
    >>> normalise_answer("NOT   spam.")
    'not spam'
    """
    text = unicodedata.normalize("NFKC", answer).casefold()
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def template_fields(template: str) -> list[str]:
    """The top-level field names a ``str.format`` template uses.

    >>> template_fields("Comment: {text}\\nFrom {extra_author}? {{literal}}")
    ['text', 'extra_author']
    """
    names = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None:
            root = re.split(r"[.\[]", name, maxsplit=1)[0]
            if not root or root.isdigit():
                raise ValueError(f"Template fields must be named, like {{text}}. Got {{{name}}} in {template!r}.")
            if root not in names:
                names.append(root)
    return names


@dataclass
class Verbaliser:
    """Maps a model's answer to a class id or ABSTAIN; unknown answers are abstains, flagged.

    ``answers`` maps each expected answer to a class id, or ``None`` for an answer that abstains
    (as "no" usually does in Smith et al.). The whole normalised answer is matched first, then its
    first clause ("Yes, because ..." -> "yes"); anything else is unmatched.

    >>> v = Verbaliser({"yes": 1, "no": None})
    >>> v("Yes."), v("yes, it asks to subscribe"), v("NO"), v("Label: spam")
    ((1, True), (1, True), (-1, True), (-1, False))
    """

    answers: Mapping[str, int | None]
    synonyms: Mapping[str, list[str]] = field(default_factory=dict)
    _lookup: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.synonyms) - set(self.answers))
        if unknown:
            raise ValueError(f"synonyms are given for {unknown}, which are not answers {sorted(self.answers)}.")
        self._lookup = {}
        for answer, vote in self.answers.items():
            value = ABSTAIN if vote is None else int(vote)
            for form in (answer, *self.synonyms.get(answer, ())):
                key = normalise_answer(form)
                if not key:
                    raise ValueError(f"Answer {form!r} is empty once normalised.")
                if self._lookup.get(key, value) != value:
                    raise ValueError(f"Answer form {form!r} maps to two different votes.")
                self._lookup[key] = value
        for answer, vote in self.answers.items():  # built-in synonyms never override given forms
            for form in DEFAULT_SYNONYMS.get(normalise_answer(answer), ()):
                self._lookup.setdefault(form, ABSTAIN if vote is None else int(vote))

    def __call__(self, answer: str | None) -> tuple[int, bool]:
        """(vote, matched): matched is False when the answer is none of the expected ones."""
        if not answer:
            return ABSTAIN, False
        vote = self._lookup.get(normalise_answer(answer))
        if vote is None:
            vote = self._lookup.get(normalise_answer(_CLAUSE_END.split(answer.strip(), maxsplit=1)[0]))
        return (ABSTAIN, False) if vote is None else (vote, True)


@dataclass
class PromptedLF:
    """One question about an item, asked of a language model, with its verbaliser.

    ``template`` is a ``str.format`` template over item fields (``text``, ``dataset``, ``split``,
    ``label`` and every extra source column); gold labels are never available. ``examples`` are
    few-shot items: field values plus the expected ``answer``. ``statements`` give, per answer, a
    sentence the embedded backend compares the item's ``embed`` rendering with (see
    :mod:`thresher.labeling.llm.embedded`); generative backends ignore them.
    """

    name: str
    template: str
    answers: dict[str, int | None]
    system: str | None = None
    examples: list[dict[str, str]] = field(default_factory=list)
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    statements: dict[str, str] | None = None
    embed: str = "{text}"
    kind: str = field(default="prompt", init=False)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"The 'name' of an LF must be letters, digits, '_' or '-'. Got {self.name!r} instead.")
        if not self.answers:
            raise ValueError(f"Prompted LF {self.name!r} needs at least one answer in 'answers'.")
        if all(v is None for v in self.answers.values()):
            raise ValueError(f"Prompted LF {self.name!r}: every answer abstains, so it can never vote.")
        self.fields = template_fields(self.template)
        self.embed_fields = template_fields(self.embed)
        if "gold" in self.fields or "gold" in self.embed_fields:
            raise ValueError(f"Prompted LF {self.name!r}: gold labels are for evaluation only; "
                             "a template cannot use {gold}.")
        self.verbaliser = Verbaliser(self.answers, self.synonyms)
        for i, example in enumerate(self.examples):
            if "answer" not in example:
                raise ValueError(f"Prompted LF {self.name!r}: example {i} has no 'answer'.")
            vote, matched = self.verbaliser(example["answer"])
            if not matched:
                raise ValueError(f"Prompted LF {self.name!r}: example {i}'s answer {example['answer']!r} is not "
                                 f"one of the answers {sorted(self.answers)} or their synonyms.")
            missing = [f for f in self.fields if f not in example]
            if missing:
                raise ValueError(f"Prompted LF {self.name!r}: example {i} lacks the template fields {missing}.")
        if self.statements is not None:
            unknown = sorted(set(self.statements) - set(self.answers))
            if unknown or len(self.statements) < 2:
                raise ValueError(f"Prompted LF {self.name!r}: 'statements' needs one sentence for each of at least "
                                 f"two answers {sorted(self.answers)}; got {sorted(self.statements)}.")

    def render(self, values: Mapping[str, Any]) -> str:
        """The user prompt for one item (or example); values are inserted verbatim, never re-read."""
        return self._format(self.template, values)

    def render_embed(self, values: Mapping[str, Any]) -> str:
        """The text the embedded backend compares with the statements."""
        return self._format(self.embed, values)

    def _format(self, template: str, values: Mapping[str, Any]) -> str:
        try:
            return template.format_map(_Fields(values))
        except KeyError as exc:
            available = sorted(k for k in values if k != "extra")
            raise ValueError(f"Prompted LF {self.name!r}: the template uses {{{exc.args[0]}}}, which items do not "
                             f"have. Available fields: {available}") from None

    def few_shot(self) -> list[tuple[str, str]]:
        """(rendered prompt, answer) for each example."""
        return [(self.render(example), example["answer"]) for example in self.examples]

    def definition(self) -> str:
        """Canonical JSON of everything that decides this LF's votes."""
        return json.dumps({
            "template": self.template, "system": self.system, "examples": self.examples,
            "answers": self.answers, "synonyms": self.synonyms, "statements": self.statements,
            "embed": self.embed,
        }, sort_keys=True)

    def version(self) -> str:
        return hashlib.sha256(f"{self.kind}\n{self.definition()}".encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"PromptedLF(name={self.name!r})"


class _Fields(dict):
    """Item fields for ``format_map``; ``None`` renders as an empty string, not 'None'."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return "" if value is None else value
