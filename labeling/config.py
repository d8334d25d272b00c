"""Typed configuration of the labeling stage: the LFs and the denoising model."""

from __future__ import annotations

from abc import abstractmethod
from typing import Annotated, Any, Literal, Union

from pydantic import Field, PrivateAttr, field_validator, model_validator

from thresher.labeling.lf import (
    KeywordLF, LabelingFunction, LookupLF, PythonLF, RegexLF, SqlLF, load_python_object, load_rule_file,
    read_terms_file,
)
from thresher.labeling.llm.config import EmbeddedBackendConfig, LLMConfig
from thresher.labeling.llm.prompt import PromptedLF
from thresher.core.classes import parse_class
from thresher.core.config import ConfigPath, ObjectSpec, StageConfig
from thresher.core.plugins import PluginRef
from thresher.labeling.label_models import LABEL_MODELS, is_plugin


class LFSpec(StageConfig):
    """One entry of ``labeling.lfs``, tagged by ``kind``: ``build(classes)`` makes its LFs (a rule file
    gives one per rule), ``check(classes)`` refuses a label that names no class before anything runs.
    Adding an LF kind: its ``LabelingFunction`` in ``labeling/lf/<kind>.py``, its spec here (a subclass
    with a ``kind`` Literal and ``build``) listed in ``LF_KINDS``."""

    @abstractmethod
    def build(self, classes: list[str]) -> list[LabelingFunction | PromptedLF]:
        """The LFs this entry makes, their labels as class ids of ``classes``."""

    def check(self, classes: list[str]) -> None:
        """Refuse a ``label`` that names no class (the kinds that vote one label have one)."""
        label = getattr(self, "label", None)
        if label is not None:
            try:
                parse_class(label, classes)
            except ValueError as exc:
                raise ValueError(f"LF {getattr(self, 'name', '')!r}: label {exc}") from None


class KeywordLFConfig(LFSpec):
    """Votes ``label`` when the text contains the ``terms`` (any of them, or all with ``mode: all``)."""

    kind: Literal["keyword"]  # keyword
    name: str  # the LF's name: its column in the votes, its row in the LF summary
    label: str | int  # the class it votes for (a name in classes, or its id)
    terms: list[str] = Field(min_length=1)  # words or phrases to look for
    mode: Literal["any", "all"] = "any"  # any: one term is enough; all: every term must be there
    case_sensitive: bool = False  # match the terms' case exactly
    word_boundary: bool = True  # match whole words only (false: also inside longer words)

    def build(self, classes: list[str]) -> list[LabelingFunction | PromptedLF]:
        return [KeywordLF(self.name, terms=self.terms, label=parse_class(self.label, classes), mode=self.mode,
                          case_sensitive=self.case_sensitive, word_boundary=self.word_boundary)]


class RegexLFConfig(LFSpec):
    """Votes ``label`` when the regular expression ``pattern`` matches the text."""

    kind: Literal["regex"]  # regex
    name: str  # the LF's name: its column in the votes, its row in the LF summary
    label: str | int  # the class it votes for (a name in classes, or its id)
    pattern: str = Field(min_length=1)  # a Python regular expression (RE2 on the SQL fast path where it can)
    case_sensitive: bool = True  # match the pattern's case exactly

    def build(self, classes: list[str]) -> list[LabelingFunction | PromptedLF]:
        return [RegexLF(self.name, pattern=self.pattern, label=parse_class(self.label, classes),
                        case_sensitive=self.case_sensitive)]


class PythonLFConfig(LFSpec):
    """A Snorkel ``@labeling_function`` or any ``f(x) -> class id or -1``, or a prompted LF, from Python."""

    kind: Literal["python"]  # python
    function: ObjectSpec  # 'file.py:name' (relative to the config file) or 'package.module:name'
    name: str | None = None  # default: the function's own name

    def build(self, classes: list[str]) -> list[LabelingFunction | PromptedLF]:
        obj = load_python_object(self.function)
        if isinstance(obj, PromptedLF):
            if self.name is not None and self.name != obj.name:
                raise ValueError(f"{self.function!r} is the prompted LF {obj.name!r}; rename it in Python.")
            return [obj]
        return [PythonLF(obj, name=self.name)]


class RuleFileLFConfig(LFSpec):
    """A file of ``label<TAB>regex`` rules (ImplyLoss / WRENCH ``rule.txt``): one regex LF per line."""

    kind: Literal["rule_file"]  # rule_file
    path: ConfigPath  # the rule file (relative to the config file)
    prefix: str | None = None  # LF names are <prefix>_000, <prefix>_001, ... (default: the file stem)
    label_map: dict[str, str] | None = None  # rename the file's labels to class names
    case_sensitive: bool = False  # match the rules' case exactly

    def build(self, classes: list[str]) -> list[LabelingFunction | PromptedLF]:
        return list(load_rule_file(self.path, classes=classes, label_map=self.label_map,
                                   case_sensitive=self.case_sensitive, prefix=self.prefix))


class SqlLFConfig(LFSpec):
    """A DuckDB boolean expression over item_id, dataset, split, text, label and extra (JSON)."""

    kind: Literal["sql"]  # sql
    name: str  # the LF's name: its column in the votes, its row in the LF summary
    label: str | int  # the class it votes for where the expression is true
    where: str = Field(min_length=1)  # e.g. "length(text) < 20 AND extra->>'source' = 'forum'"

    def build(self, classes: list[str]) -> list[LabelingFunction | PromptedLF]:
        return [SqlLF(self.name, where=self.where, label=parse_class(self.label, classes))]


class LookupLFConfig(LFSpec):
    """Term -> label lists, inline (``terms``) or as a ``term,label`` CSV (``terms_file``)."""

    kind: Literal["lookup"]  # lookup
    name: str  # the LF's name: its column in the votes, its row in the LF summary
    terms: dict[str, str | int] | None = None  # term -> the class it votes for
    terms_file: ConfigPath | None = None  # a term,label CSV (relative to the config file) instead of terms
    case_sensitive: bool = False  # match the terms' case exactly
    word_boundary: bool = True  # match whole words only

    @model_validator(mode="after")
    def _one_source(self) -> "LookupLFConfig":
        if (self.terms is None) == (self.terms_file is None):
            raise ValueError(f"Lookup LF {self.name!r}: give exactly one of 'terms' and 'terms_file'.")
        return self

    def build(self, classes: list[str]) -> list[LabelingFunction | PromptedLF]:
        raw = self.terms if self.terms is not None else read_terms_file(self.terms_file)
        try:
            terms = {term: parse_class(value, classes) for term, value in raw.items()}
        except ValueError as exc:
            raise ValueError(f"Lookup LF {self.name!r}: {exc}") from None
        return [LookupLF(self.name, terms=terms, case_sensitive=self.case_sensitive, word_boundary=self.word_boundary)]


def _yaml_yes_no(value: Any) -> Any:
    """YAML 1.1 reads the keys and values yes/no as booleans; read them back as the words."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return {_yaml_yes_no(k): v for k, v in value.items()}
    return value


class PromptLFConfig(LFSpec):
    """An LLM-prompted LF (see :class:`labeling.llm.prompt.PromptedLF`); answers map to a class or abstain."""

    kind: Literal["prompt"]  # prompt
    name: str  # the LF's name: its column in the votes, its row in the LF summary
    template: str = Field(min_length=1)  # str.format over item fields, e.g. "Comment: {text}\n\nIs it spam?"
    answers: dict[str, str | int | None] = Field(min_length=1)  # answer -> class, or abstain / null
    system: str | None = None  # the system message, for chat backends
    examples: list[dict[str, str]] = Field(default_factory=list)  # item fields plus 'answer'
    synonyms: dict[str, list[str]] = Field(default_factory=dict)  # answer -> other words the model may answer with
    statements: dict[str, str] | None = None  # answer -> sentence, for the embedded backend
    embed: str = "{text}"  # what the embedded backend compares with the statements

    @field_validator("answers", "synonyms", "statements", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _yaml_yes_no(value)

    @field_validator("examples", mode="before")
    @classmethod
    def _example_answers(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{k: _yaml_yes_no(v) for k, v in e.items()} if isinstance(e, dict) else e for e in value]
        return value

    def build(self, classes: list[str]) -> list[LabelingFunction | PromptedLF]:
        return [self.prompted(classes)]

    def prompted(self, classes: list[str]) -> PromptedLF:
        """The prompted LF, its answers mapped to class ids of ``classes`` (None: abstain)."""
        answers: dict[str, int | None] = {}
        for answer, target in self.answers.items():
            if target is None or (isinstance(target, str) and target.lower() == "abstain"):
                answers[answer] = None
                continue
            try:
                answers[answer] = parse_class(target, classes)
            except ValueError as exc:
                raise ValueError(f"Prompted LF {self.name!r}: answer {answer!r} maps to {exc}") from None
        return PromptedLF(self.name, template=self.template, answers=answers, system=self.system,
                          examples=list(self.examples), synonyms=dict(self.synonyms),
                          statements=None if self.statements is None else dict(self.statements), embed=self.embed)


LF_KINDS: tuple[type[LFSpec], ...] = (KeywordLFConfig, RegexLFConfig, SqlLFConfig, LookupLFConfig, PythonLFConfig,
                                      RuleFileLFConfig, PromptLFConfig)
LFConfig = Annotated[Union[LF_KINDS], Field(discriminator="kind")]  # type: ignore[valid-type]


class SelectionGrid(StageConfig):
    """Candidate LabelModel settings tried when a gold dev split is used for model selection."""

    n_epochs: list[int] = Field(default_factory=lambda: [100, 300], min_length=1)  # LabelModel epochs tried
    lr: list[float] = Field(default_factory=lambda: [0.01, 0.003], min_length=1)  # LabelModel learning rates tried
    l2: list[float] = Field(default_factory=lambda: [0.0, 0.1], min_length=1)  # LabelModel L2 penalties tried
    include_majority: bool = True  # MajorityLabelVoter competes too
    include_dawid_skene: bool = True  # and Dawid-Skene (full and one-coin)


class DenoiseConfig(StageConfig):
    """The label model (Snorkel's ``LabelModel``, ``MajorityLabelVoter``, crowd-kit's ``DawidSkene`` or
    ``OneCoinDawidSkene``, or ``auto``: chosen by held-out vote agreement, see :mod:`labeling.auto`)
    and its settings.

    With ``select_on`` set to a split that has gold labels, every candidate of ``grid`` (plus the
    configured settings, majority vote and Dawid-Skene; with ``auto``, the registered models) is fitted
    and the best on that split by ``metric`` is kept. Scores reported on that split are then optimistic; report another split.
    """

    # A registered model's name, auto, or your own label model: 'module:attribute' / 'file.py:attribute'
    # (or from Python the object), see labeling/label_models.py PluginLabelModel; ``params`` are its settings.
    model: PluginRef = Field("label_model", json_schema_extra={"anyOf": [
        {"enum": [*LABEL_MODELS, "auto"]}, {"type": "string", "pattern": "^.+:.+$"}]})
    params: dict[str, Any] = Field(default_factory=dict)  # your own label model's arguments
    # A tie between classes (of any model; common with majority vote) goes to one of the tied classes,
    # chosen per item; with "abstain" (Snorkel's default) the item is also left undecided, so the
    # stages after labeling leave it out as they leave out items no LF voted on. "snorkel": decided as
    # Snorkel's probs_to_preds(tie_break_policy="random") decides them for the label matrix in item_id
    # order (a hash of the item's row number: the same labels as Snorkel's, but an item's class can
    # change when items are added before it); "random": a hash of the item id (stable per item).
    tie_break: Literal["abstain", "random", "snorkel"] = "abstain"
    ds_iterations: int = Field(100, ge=1, le=10_000)  # Dawid-Skene's (both kinds) EM iterations at most (crowd-kit default)
    auto_rows: int = Field(20_000, ge=100)  # model: auto scores the candidates on at most this many items
    n_epochs: int = Field(100, ge=1, le=100_000)  # Snorkel 0.10 defaults throughout
    lr: float = Field(0.01, gt=0, le=10)  # Snorkel LabelModel's learning rate
    l2: float = Field(0.0, ge=0)  # Snorkel LabelModel's L2 penalty
    class_balance: list[float] | None = None  # each class's prior share, e.g. [0.5, 0.5] (None: learned)
    seed: int = 0  # the label model's seed
    fit_splits: list[str] | None = None  # None: fit on every item (gold labels are never used)
    # The LabelModel learns from the LFs' agreement rates; past this many items it is fitted on that
    # many drawn at random (seeded), which bounds its memory (benchmarks/README: accuracy unchanged).
    fit_rows: int | None = Field(250_000, ge=1_000)
    select_on: str | None = None  # a split with gold labels: every candidate is scored there and the best kept
    # With model: auto, once at least min_reviews items have a person's answer (thresher review, or
    # imported), auto's candidates are scored on those answers as on a gold select_on split, and the best kept.
    use_reviews: bool = True
    min_reviews: int = Field(20, ge=1)  # answered items needed before the answers choose the label model
    metric: Literal["accuracy", "f1", "macro_f1"] = "accuracy"  # f1: of class id 1 (binary only)
    grid: SelectionGrid = SelectionGrid()  # the candidates select_on tries

    @field_validator("model")
    @classmethod
    def _known(cls, value: Any) -> Any:
        if isinstance(value, str) and ":" not in value and value not in (*LABEL_MODELS, "auto"):
            raise ValueError(f"model must be one of {', '.join([*LABEL_MODELS, 'auto'])}, or your own as "
                             f"'module:attribute'. Got {value!r}.")
        return value

    @property
    def plugin(self) -> Any:
        """Your own label model (an object or a spec), or None for a registered one."""
        return self.model if is_plugin(self.model) else None

    @model_validator(mode="after")
    def _check_balance(self) -> "DenoiseConfig":
        if self.params and self.plugin is None:
            raise ValueError("params are the settings of your own label model; the registered ones have their own fields.")
        if self.class_balance is not None and abs(sum(self.class_balance) - 1) > 1e-6:
            raise ValueError(f"class_balance must sum to 1. Got {self.class_balance} (sum {sum(self.class_balance)}).")
        return self


class LabelingConfig(StageConfig):
    """The labeling stage: which LFs vote, and how the votes are denoised."""

    classes: list[str] = Field(min_length=2)  # set once at the top level of the config
    # the labeling functions, each tagged by kind (keyword, regex, sql, lookup, rule_file, python, prompt)
    lfs: list[LFConfig] = Field(default_factory=list)
    source_votes: bool = False  # also use the weak labels imported with the data (WRENCH)
    # Also use the per-item vote counts imported with the data (a source's vote_counts): each class's
    # count adds to the LFs' votes for it. Counts say how many votes, not whose, so only majority vote
    # can use them (model: majority).
    vote_counts: bool = False
    # A Python LF that raises abstains on that item (counted, first examples kept); the run fails
    # only if some LF raises on more than this fraction of the items (0: on the first error).
    max_fault_rate: float = Field(0.01, ge=0, le=1)
    n_jobs: int | None = Field(None, ge=1)  # Python LF processes; None: all cores if serial work > 20 s
    llm: LLMConfig | None = None  # the backend prompted LFs ask
    model: DenoiseConfig = DenoiseConfig()  # the label model that denoises the votes, and its settings
    # The LFs each entry of ``lfs`` built, kept with this config object: one run builds each LF once.
    _built: dict[int, list[LabelingFunction | PromptedLF]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "LabelingConfig":
        if not self.lfs and not self.source_votes and not self.vote_counts:
            raise ValueError("The labeling stage needs LFs: list some under 'lfs', or set source_votes: true "
                             "(votes or answers imported with the data) or vote_counts: true.")
        if self.vote_counts and self.model.model != "majority":
            raise ValueError(f"labeling.vote_counts: per-item vote counts say how many votes each class got, not who "
                             f"cast them, so only majority vote can use them (model {self.model.model!r} learns each "
                             "voter's accuracy). Set labeling.model.model: majority.")
        if self.model.class_balance is not None and len(self.model.class_balance) != len(self.classes):
            raise ValueError(
                f"class_balance has {len(self.model.class_balance)} entries but there are "
                f"{len(self.classes)} classes {self.classes}."
            )
        prompted = [lf for lf in self.lfs if isinstance(lf, PromptLFConfig)]
        if prompted and self.llm is None:
            raise ValueError(f"Prompted LFs {[lf.name for lf in prompted]} need an 'llm' backend section "
                             "(backend: openai | embedded | transformers).")
        for spec in prompted:
            built = self.build_spec(spec)[0]
            if isinstance(self.llm, EmbeddedBackendConfig) and built.statements is None:
                raise ValueError(f"Prompted LF {spec.name!r} needs 'statements' (one sentence per answer): the embedded "
                                 "backend answers by comparing the item with them.")
        for lf in self.lfs:
            lf.check(self.classes)
        return self

    def build_lfs(self) -> list[LabelingFunction]:
        """The configured LFs that vote without a language model."""
        return [lf for lf in self._build() if not isinstance(lf, PromptedLF)]

    def build_prompted_lfs(self) -> list[PromptedLF]:
        """The prompted LFs, from the config or from Python modules (``kind: python`` naming a PromptedLF)."""
        prompted = [lf for lf in self._build() if isinstance(lf, PromptedLF)]
        if prompted and self.llm is None:
            raise ValueError(f"Prompted LFs {[lf.name for lf in prompted]} need an 'llm' backend section.")
        return prompted

    def _build(self) -> list[LabelingFunction | PromptedLF]:
        """Instantiate every configured LF; names must be unique."""
        lfs = [lf for spec in self.lfs for lf in self.build_spec(spec)]
        check_unique([lf.name for lf in lfs])
        return lfs

    def build_spec(self, spec: LFConfig) -> list[LabelingFunction | PromptedLF]:
        """The LFs of one entry of ``lfs`` (a rule file gives one per rule; Python entries import their file),
        built on the first call and kept with this config."""
        if id(spec) not in self._built:
            self._built[id(spec)] = spec.build(self.classes)
        return self._built[id(spec)]



def check_unique(names: list[str]) -> None:
    """LF names key votes and summaries: each must appear once."""
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"LF names must be unique. These appear more than once: {duplicates}")
