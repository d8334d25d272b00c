"""Load rule files (ImplyLoss / WRENCH ``rule.txt``: ``label<TAB>regex[<TAB>seed]``) as regex LFs."""

from __future__ import annotations

from pathlib import Path

from thresher.labeling.lf.regex import RegexLF
from thresher.core.classes import parse_class


def load_rule_file(
    path: str | Path, *, classes: list[str], label_map: dict[str, str] | None = None,
    case_sensitive: bool = False, prefix: str | None = None,
) -> list[RegexLF]:
    """One :class:`RegexLF` per line, named ``<prefix>_<line index>`` (prefix: the file stem).

    Labels are class names or ids, optionally renamed through ``label_map`` first. ImplyLoss
    applies the rules to lower-cased text; ``case_sensitive=False`` (the default) gives the same
    matches on text of any case.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Rule file '{path}' does not exist.")
    prefix = prefix or path.stem
    lfs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(f"{path}:{number}: a rule is 'label<TAB>regex[<TAB>seed]'. Got {line!r}.")
        raw_label, pattern = fields[0].strip(), fields[1]
        try:
            label = parse_class((label_map or {}).get(raw_label, raw_label), classes)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: label {raw_label!r}: {exc}") from None
        lfs.append(RegexLF(f"{prefix}_{len(lfs):03d}", pattern=pattern, label=label, case_sensitive=case_sensitive))
    if not lfs:
        raise ValueError(f"Rule file '{path}' holds no rules.")
    return lfs
