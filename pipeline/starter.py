"""``thresher init``: a starter project, a commented config and a Python LF file, for the user's own data file.

The roles of the file's columns are read from its rows: the text is the column named like a text
(``text``, ``content``, ``review``, ...) or else the one with the longest strings; the label is a
column named like a label (``label``, ``class``, ...) with at most ``MAX_CLASSES`` values, and its
values become the classes; an id column is used only when every row has a distinct id. With labels,
the starter cleans them (``labels_from: given``); without, the user names the classes and the
starter labels with LFs that vote from the first run: a zero-shot prompted LF (each text compared
with one sentence per class by the offline embedded backend) and an example Python LF.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from thresher.core.classes import parse_class
from thresher.core.progress import ProgressCounter
from thresher.pipeline.config import config_from_dict
from thresher.storage.export import HELD_OUT_SPLITS
from thresher.storage.formats import EXTENSIONS, READERS
from thresher.storage.ingest import SourceConfig

CONFIG_NAME = "thresher.yaml"
LF_FILE_NAME = "lfs.py"
SAMPLE_ROWS = 200  # rows that decide the text, label, id and split columns
MAX_CLASSES = 100  # a column with more distinct values is not taken for a label
MAX_SPLITS = 20
# Names that say what a column holds, most telling first (matched on the last dotted part, any case).
TEXT_NAMES = ("text", "content", "body", "comment", "message", "review", "sentence", "document", "tweet",
              "question", "description", "title")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "y", "tag", "annotation")
ID_NAMES = ("id", "uuid", "guid", "key")
SPLIT_NAMES = ("split", "subset", "partition")
GOLD_NAMES = ("gold", "true_label", "true_class", "truth", "ground_truth", "expert_label")  # also gold_*, *_gold
# Ids are checked for repeats in this many rows (a set of them is held); ingest quarantines any later
# repeat with a reason (duplicate_row, conflicting_id), so a longer file loses nothing.
ID_CHECK_ROWS = 2_000_000
# The starter's zero-shot LF: the static encoder (tens of thousands of texts/s; the full MiniLM, ~200/s on
# 2 cores, would be most of a 5,000-row first run) and the cosine margin it must win by, chosen on AG
# News and YouTube dev rows (benchmarks/README.md, "The thresher init starter's LFs").
ZERO_SHOT_ENCODER = "minilm-static"
ZERO_SHOT_MARGIN = 0.02


class StarterError(ValueError):
    """The data file cannot start a project as it is (no rows, no text column, one class, ...)."""


@dataclass
class DataProfile:
    """What ``thresher init`` read from a data file: its columns' roles, classes and row counts."""

    path: Path
    fmt: str
    rows: int
    columns: list[str]
    text: str
    text_chars: float  # mean characters of the text column, over the sampled rows
    classes: list[str]
    label: str | None = None
    class_rows: dict[str, int] = field(default_factory=dict)  # rows per class (with a label column)
    unlabelled_rows: int = 0  # rows whose label cell is empty
    id: str | None = None
    split: str | None = None
    split_rows: dict[str, int] = field(default_factory=dict)
    gold: str | None = None  # a column recognised by its name as hand-checked labels (only to score)


def find_data_file(directory: Path) -> Path:
    """The one data file in ``directory`` (not searched below it), or an error naming what is there."""
    found = sorted(p for p in directory.glob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if len(found) == 1:
        return found[0]
    where = f"'{directory}'"
    if not found:
        raise StarterError(f"No data file ({', '.join(EXTENSIONS)}) in {where}: pass one with --data FILE.")
    raise StarterError(f"{len(found)} data files in {where} ({', '.join(p.name for p in found[:10])}): pick one with "
                       "--data FILE (the config's 'path' can be made a glob afterwards).")


def _role_name(column: str) -> str:
    return column.rsplit(".", 1)[-1].lower()


def _named(columns: list[str], names: tuple[str, ...], exclude: set[str]) -> list[str]:
    """The columns called one of ``names``, in the order of ``names``."""
    rank = {name: i for i, name in enumerate(names)}
    hits = [c for c in columns if c not in exclude and _role_name(c) in rank]
    return sorted(hits, key=lambda c: rank[_role_name(c)])


def _is_gold(column: str) -> bool:
    """Whether a column's name says it holds gold labels: ``gold``, ``gold_*``, ``*_gold``, ``true_label``, ..."""
    name = _role_name(column)
    return name in GOLD_NAMES or name.startswith("gold_") or name.endswith("_gold")


def _is_number(value: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _value_key(value: Any) -> str | None:
    """A label, id or split cell as text, None when empty; a float 1.0 reads as 1, the text "1.0" stays
    "1.0" (unlike ingest's label_map keys): class names made from it must match the raw text, which
    ingest's label parsing compares by name."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _text_column(columns: list[str], sample: list[dict[str, Any]], text: str | None) -> tuple[str, float]:
    def mean_chars(column: str) -> float:
        values = [row.get(column) for row in sample]
        strings = [v for v in values if isinstance(v, str) and v.strip()]
        return sum(len(v) for v in strings) / max(len(strings), 1)

    def texty(column: str) -> bool:  # mostly strings that are not numbers
        values = [row.get(column) for row in sample if row.get(column) not in (None, "")]
        strings = [v for v in values if isinstance(v, str) and not _is_number(v)]
        return bool(values) and len(strings) >= 0.9 * len(values)

    if text is not None:
        if text not in columns:
            raise StarterError(f"--text {text!r} is not a column of the file; its columns: {', '.join(columns)}.")
        return text, mean_chars(text)
    candidates = [c for c in columns if texty(c)]
    if not candidates:
        raise StarterError("No column holds text (strings that are not numbers) in the first rows; thresher labels "
                           f"text: pass the column with --text COL. Columns: {', '.join(columns)}.")
    named = _named(candidates, TEXT_NAMES, set())
    chosen = named[0] if named else max(candidates, key=mean_chars)
    return chosen, mean_chars(chosen)


def profile_data(path: Path, *, text: str | None = None, label: str | None = None, no_label: bool = False,
                 classes: list[str] | None = None, progress: bool = True) -> DataProfile:
    """Read ``path`` once and decide each column's role; the arguments override what is guessed
    (``no_label``: the file's labels, if any, are not used; ``classes``: the class names)."""
    source = SourceConfig(path=str(path), dataset="starter")
    fmt = source.resolved_format(path)
    if fmt == "wrench":
        raise StarterError(f"'{path.name}' is a JSON object, not an array of rows: for WRENCH files write the "
                           "config by hand (format: wrench; README 'Inputs and rejects').")
    if no_label and label is not None:
        raise StarterError("Pass either --label COL or --no-label, not both.")
    rows = READERS[fmt].rows(path, source)
    sample = list(itertools.islice(rows, SAMPLE_ROWS))
    if not sample:
        raise StarterError(f"No rows could be read from '{path}' as {fmt.upper()}.")
    columns = list(dict.fromkeys(k for row in sample for k, v in row.items() if not isinstance(v, dict)))
    text_column, text_chars = _text_column(columns, sample, text)
    used = {text_column}
    label_column = label
    if label is not None and label not in columns:
        raise StarterError(f"--label {label!r} is not a column of the file; its columns: {', '.join(columns)}.")
    if label is None and not no_label:
        small = [c for c in _named(columns, LABEL_NAMES, used)
                 if len({_value_key(row.get(c)) for row in sample} - {None}) <= MAX_CLASSES]
        label_column = small[0] if small else None
    if label_column is not None:
        used.add(label_column)
    gold_column = next((c for c in columns if c not in used and _is_gold(c)
                        and len({_value_key(row.get(c)) for row in sample} - {None}) <= MAX_CLASSES), None)
    if gold_column is not None:
        used.add(gold_column)
    ids = [c for c in columns if c not in used and (_role_name(c) in ID_NAMES or _role_name(c).endswith("_id"))]
    id_column = next((c for c in ids if len({_value_key(r.get(c)) for r in sample} - {None}) == len(sample)), None)
    if id_column is not None:
        used.add(id_column)
    split_column = next((c for c in _named(columns, SPLIT_NAMES, used)
                         if len({_value_key(r.get(c)) for r in sample}) <= MAX_SPLITS), None)

    n_rows = 0
    labels: Counter[str | None] = Counter()
    golds: Counter[str | None] = Counter()
    splits: Counter[str] = Counter()
    seen_ids: set[str] = set()
    with ProgressCounter(description=f"Reading {path.name}", total=None, enabled=progress) as bar:
        for row in itertools.chain(sample, rows):
            n_rows += 1
            if label_column is not None:
                labels[_value_key(row.get(label_column))] += 1
            if gold_column is not None:
                golds[_value_key(row.get(gold_column))] += 1
            if split_column is not None:
                splits[_value_key(row.get(split_column)) or "(empty)"] += 1
            if id_column is not None and n_rows <= ID_CHECK_ROWS:
                value = _value_key(row.get(id_column))
                if value is None or value in seen_ids:
                    id_column, seen_ids = None, set()  # a missing or repeated id: items are named by content
                else:
                    seen_ids.add(value)
            if n_rows % 10_000 == 0:
                bar.advance(10_000)
        bar.advance(n_rows % 10_000)
    if split_column is not None and len(splits) > MAX_SPLITS:
        split_column, splits = None, Counter()
    unlabelled = labels.pop(None, 0)
    profile = DataProfile(path=path, fmt=fmt, rows=n_rows, columns=columns,
                          text=text_column, text_chars=text_chars, classes=[], label=label_column, id=id_column,
                          split=split_column, split_rows=dict(splits), unlabelled_rows=unlabelled)
    golds.pop(None, 0)
    if label_column is None and gold_column is not None and classes is None:
        profile.classes = _classes(path, gold_column, golds, None, explicit=False)[0]  # the gold's classes
    else:
        profile.classes, profile.class_rows = _classes(path, label_column, labels, classes,
                                                       explicit=label is not None)
    profile.gold = gold_column
    return profile


def _classes(path: Path, label: str | None, values: Counter, given: list[str] | None,
             explicit: bool) -> tuple[list[str], dict[str, int]]:
    """The class names, and rows per class: the given names, or the label column's values in order."""
    names = [c.strip() for c in given or [] if c.strip()]
    if given is not None:
        if len(names) < 2 or len({n.lower() for n in names}) != len(names):
            raise StarterError(f"--classes needs at least two distinct names (case aside); got {given}.")
    if label is None:
        if given is None:
            raise StarterError(f"No label column found in '{path.name}' (looked for {', '.join(LABEL_NAMES)}). "
                               "Name the classes your LFs will vote with --classes A,B, or pass the column with "
                               "--label COL.")
        return names, {}
    if len(values) > MAX_CLASSES and given is None:
        raise StarterError(f"Label column {label!r} has {len(values):,} distinct values (at most {MAX_CLASSES} "
                           "are taken for classes); pass --no-label --classes A,B to label with LFs instead.")
    if given is None:
        merged: dict[str, str] = {}
        for value in values:  # parse_class matches names in any case: one class per spelling
            merged.setdefault(value.lower(), value)
        numeric = all(re.fullmatch(r"-?\d+", v) for v in merged.values())
        names = sorted(merged.values(), key=(lambda v: (int(v), v)) if numeric else str.lower)
        if len(names) < 2:
            which = "no values" if not names else f"one value ({names[0]!r})"
            raise StarterError(f"Label column {label!r} has {which}: pass --no-label --classes A,B to label with "
                               "LFs instead" + ("" if explicit else ", or --label COL for another column") + ".")
    counts: Counter = Counter()
    unknown = []
    for value, n in values.items():
        try:
            class_id = parse_class(value, names)
        except ValueError:
            unknown.append(value)
            continue
        counts[names[class_id or 0]] += n  # (never None: empty cells were counted apart)
    if unknown:
        raise StarterError(f"Label values {sorted(unknown)[:10]} of column {label!r} are neither among --classes "
                           f"{names} nor class ids 0..{len(names) - 1}; pass --no-label to label with LFs only.")
    return names, {name: counts[name] for name in names}


def _c(code: str, comment: str) -> str:
    """A YAML line with its comment in the column the other comments use."""
    return f"{code:<33} # {comment}"


def _q(value: str) -> str:
    """A YAML scalar for any string (JSON's double-quoted strings are YAML)."""
    return json.dumps(value, ensure_ascii=False)


def _identifier(name: str, taken: set[str]) -> str:
    base = re.sub(r"\W+", "_", name).strip("_").upper() or "CLASS"
    if base[0].isdigit() or base == "ABSTAIN":
        base = f"CLASS_{base}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _zero_shot(classes: list[str]) -> list[str]:
    """The YAML lines of the zero-shot prompted LF (none when a class name has no letters: "0", "1")."""
    if not all(re.search(r"[^\W\d_]", c) for c in classes):
        return []
    listed = ", ".join(classes[:-1]) + f" or {classes[-1]}"
    template = f"Text: {{text}}\n\nWhich one is this text about: {listed.replace('{', '{{').replace('}', '}}')}? " \
               "Answer with one of them."
    answers = ", ".join(f"{_q(c.lower())}: {_q(c)}" for c in classes)
    statements = ", ".join(f"{_q(c.lower())}: {_q(f'This text is about {c}.')}" for c in classes)
    return [
        "    # Zero-shot: the embedded backend compares each text with one sentence per class (a static model",
        "    # distilled from all-MiniLM-L6-v2, offline) and votes the nearest class when it wins by llm.margin,",
        "    # else abstains. Rewrite the",
        "    # sentences as typical items of each class for better votes; with an LLM server (llm.backend: openai)",
        "    # the template is the question it is asked.",
        "    - kind: prompt",
        "      name: zero_shot",
        f"      template: {_q(template)}",
        f"      answers: {{{answers}}}",
        f"      statements: {{{statements}}}",
    ]


def _labeling_lines(profile: DataProfile) -> list[str]:
    zero_shot = _zero_shot(profile.classes)
    lines = ["labeling:", "  lfs:", *zero_shot,
             _c(f"    - {{kind: python, function: {LF_FILE_NAME}:names_a_class}}", "an example rule to replace"),
             "    # More kinds: keyword, regex, sql, lookup, rule_file (README 'Labeling functions'), e.g.",
             f"    # - {{kind: keyword, name: my_rule, label: {_q(profile.classes[0])}, terms: [some words, a phrase]}}"]
    if zero_shot:
        lines += ["  llm:",
                  _c("    backend: embedded", "or: openai (base_url, model, api_key_env), transformers (model_path)"),
                  _c(f"    encoder: {ZERO_SHOT_ENCODER}", "fast; minilm: ~100x slower, surer votes (margin 0.05)"),
                  _c(f"    margin: {ZERO_SHOT_MARGIN}", "abstain unless the nearest sentence wins by this cosine")]
    lines += ["  model:", _c("    model: majority", "with three or more LFs that vote, try label_model or auto")]
    return lines


def starter_config(profile: DataProfile, directory: Path, project: str) -> str:
    """The commented starter config for ``profile``'s file, with paths relative to ``directory``."""
    data_path = Path(os.path.relpath(profile.path.resolve(), directory.resolve())).as_posix()
    dataset = re.sub(r"[^\w.-]+", "_", profile.path.stem).strip("_") or "data"
    given = profile.label is not None
    label = profile.label or ""
    numeric = not any(re.search(r"[^\W\d_]", c) for c in profile.classes)
    if numeric:
        ids = "the label column's values; name them with label_map below"
    else:
        ids = "class ids are positions: " + ", ".join(f"{c} = {i}" for i, c in enumerate(profile.classes[:4]))
        ids += ", ..." if len(profile.classes) > 4 else ""
    others = [c for c in profile.columns if c not in (profile.text, profile.label, profile.id, profile.split,
                                                       profile.gold)]
    lines = [
        f"# thresher config for {profile.path.name}, written by `thresher init` on {date.today().isoformat()}.",
        f"# Check it: thresher check {CONFIG_NAME}    Run it: thresher run {CONFIG_NAME}",
        f"# Query what every stage wrote: thresher sql \"SELECT * FROM curated LIMIT 10\" {CONFIG_NAME}",
        "# Relative paths are relative to this file. Every setting: README 'Configuration'.",
        f"project: {_q(project)}",
        _c("db: thresher.duckdb", "every stage writes its tables here"),
        _c(f"classes: [{', '.join(_q(c) for c in profile.classes)}]", ids),
    ]
    if given:
        lines += [_c("labels_from: given", f"detect, reweight and export clean the {profile.label!r} labels"),
                  _c("", "(denoised: the LFs' labels instead)")]
    lines += ["", "sources:", _c(f"  - path: {_q(data_path)}", f"{profile.rows:,} rows when init read it"),
              f"    dataset: {_q(dataset)}"]
    if profile.split is None:
        lines.append(_c("    split: train", "every row in one split (or map a split column below)"))
    lines += ["    columns:",
              _c(f"      text: {_q(profile.text)}", f"what LFs and features read (mean {profile.text_chars:,.0f} characters)")]
    lines.append(_c(f"      label: {_q(label)}", "the labels to clean") if given else
                 _c("      # label: COL", "a column of labels, to clean instead of labelling"))
    lines.append(_c(f"      id: {_q(profile.id)}", "unique per row") if profile.id else
                 _c("      # id: COL", "none unique: items are named by a hash of the row"))
    lines.append(f"      split: {_q(profile.split)}" if profile.split else
                 _c("      # split: COL", "e.g. train/dev/test per row"))
    lines.append(_c(f"      gold: {_q(profile.gold)}", "hand-checked labels (recognised by name): only to score")
                 if profile.gold else _c("      # gold: COL", "hand-checked labels: only to score the pipeline"))
    if others:
        shown = ", ".join(others[:8]) + (", ..." if len(others) > 8 else "")
        lines.append(f"    # Other columns ({shown}) are kept in items.extra; Python LFs read them as x.<name>.")
    if given:
        mapped = json.dumps({c: f"NAME_{c}" if numeric else c for c in profile.classes[:2]}, ensure_ascii=False)
        lines.append(_c(f"    # label_map: {mapped}", "raw value -> class (null: no label); list them in classes"))
    lines.append("")
    labeling = _labeling_lines(profile)
    if given:
        lines += ["# To label with LFs too, uncomment this section and set labels_from: denoised above.",
                  *(f"# {line}" for line in labeling)]
    else:
        lines += labeling
    lines += [
        "",
        _c("detect:", "cleanlab's confident learning on out-of-fold probabilities"),
        "  n_folds: 5",
        "",
        "# reweight: STORM's learned weights are off: they trained worse models on every shared dataset",
        "# (benchmarks/README.md, 'Curation value'). To try them: reweight: {strategy: storm, epochs: 5}",
        "",
        _c("export:", "Parquet shards + .manifest.json for training workers"),
        "  out_dir: export",
        _export_splits_line(profile),
    ]
    return "\n".join(lines) + "\n"


def _export_splits_line(profile: DataProfile) -> str:
    """The export's splits: the training ones only, so evaluation rows stay out of the training shards."""
    if profile.split is None:
        return _c("  splits: [train]", "the split every row is in above; evaluation splits stay out")
    found = sorted(profile.split_rows)
    training = [s for s in found if s.lower() not in HELD_OUT_SPLITS]
    held = [s for s in found if s not in training]
    if "(empty)" in found:  # rows without a split: the rule, not a list, names them
        return _c("  splits: training", f"every split but the evaluation ones ({', '.join(held) or 'none here'})")
    if not training:
        return _c("  splits: all", f"every split is an evaluation name ({', '.join(held)}): all are exported")
    note = f"held out: {', '.join(held)}" if held else "every split init saw; evaluation splits would stay out"
    return _c(f"  splits: [{', '.join(_q(s) for s in training)}]", note)


def starter_lfs(profile: DataProfile) -> str:
    """The starter Python LF file: class constants and one example rule, plain Snorkel LFs."""
    taken: set[str] = set()
    names = [_identifier(c, taken) for c in profile.classes]
    others = [c for c in profile.columns if c not in (profile.text, profile.label, profile.id, profile.split,
                                                       profile.gold) and c.isidentifier()]  # never the gold
    fields = ", ".join(f"x.{c}" for c in others[:8]) + (", ..." if len(others) > 8 else "")
    words = {n: sorted(set(re.findall(r"[^\W\d_]+", c.lower()))) for n, c in zip(names, profile.classes)}
    return "\n".join([
        f'"""Python labeling functions for {profile.path.name}: plain Snorkel LFs, listed in {CONFIG_NAME}.',
        "",
        f"Each gets one row x: x.text (the file's {profile.text!r} column)"
        + (f" and the other columns ({fields})" if others else "") + ",",
        "and returns a class id or ABSTAIN. Write rules about your data, then `thresher label thresher.yaml`",
        "shows each LF's coverage, overlaps and conflicts (and `thresher lfs thresher.yaml` again later).",
        '"""',
        "",
        "import re",
        "",
        "from snorkel.labeling import labeling_function",
        "",
        "ABSTAIN = -1",
        *(f"{n} = {i}  # {c!r} in {CONFIG_NAME}" for i, (n, c) in enumerate(zip(names, profile.classes))),
        "",
        "# The words of each class name, for the example rule below"
        + (" (the class names are numbers: fill in words)." if not any(words.values()) else "."),
        "CLASS_WORDS = {" + ", ".join(f"{n}: {tuple(w)!r}" for n, w in words.items()) + "}",
        "",
        "",
        "@labeling_function()",
        "def names_a_class(x):",
        '    """An example to replace: vote the one class whose name is a word of the text (abstain on none or',
        '    several)."""',
        '    words = set(re.findall(r"\\w+", x.text.lower()))',
        "    named = [label for label, names in CLASS_WORDS.items() if words.intersection(names)]",
        "    return named[0] if len(named) == 1 else ABSTAIN",
        "",
    ])


def write_starter(directory: Path, profile: DataProfile, *, force: bool = False) -> list[Path]:
    """Write the starter config and LF file into ``directory`` (made if missing); refuses to replace
    either unless ``force``. Returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    targets = [directory / CONFIG_NAME, directory / LF_FILE_NAME]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise StarterError(f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: "
                           "pass --force to replace, or init another directory.")
    project = re.sub(r"[^\w.-]+", "-", directory.resolve().name).strip("-") or profile.path.stem
    config_text = starter_config(profile, directory, project)
    config_from_dict(yaml.safe_load(config_text), base_dir=directory)  # a starter that does not load is a bug
    targets[0].write_text(config_text)
    targets[1].write_text(starter_lfs(profile))
    return targets
