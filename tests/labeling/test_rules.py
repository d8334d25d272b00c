"""Rule files (ImplyLoss / WRENCH) as thresher regex LFs, on the real SMS and TREC data."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from thresher.labeling.apply import apply_sql_lfs
from thresher.labeling.config import LabelingConfig
from thresher.labeling.lf import load_rule_file
from thresher.labeling.matrix import vote_matrix
from thresher.labeling.stage import label
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest

pytestmark = [pytest.mark.slow, pytest.mark.quality]  # accuracy thresholds on real datasets
SMS_CLASSES = ["ham", "spam"]
TREC_CLASSES = ["DESC", "ENTY", "HUM", "ABBR", "LOC", "NUM"]
TREC_LONG = {"DESCRIPTION": "DESC", "ENTITY": "ENTY", "HUMAN": "HUM", "ABBREVIATION": "ABBR",
             "LOCATION": "LOC", "NUMERIC": "NUM"}


def _matrix(con, lfs, items: str = "items") -> tuple[list[str], np.ndarray]:
    item_ids = [r[0] for r in con.execute(f"SELECT item_id FROM {items} ORDER BY item_id").fetchall()]
    return item_ids, vote_matrix(apply_sql_lfs(con, lfs, items=items), item_ids, [lf.name for lf in lfs])


def test_sms_rules_against_the_shipped_wrench_matrix(con, shared_data):
    """Documented difference: the shipped weak_labels are not row-aligned with the texts.

    The 73 rules compiled by thresher give exactly what ImplyLoss's Python ``re`` gives on the same
    (lower-cased) texts, and are 95 % accurate against gold. The weak_labels in this copy of WRENCH
    sms valid/test have about the same per-LF firing counts but sit on other rows: they are only
    74-80 % accurate against the same gold, and only ~83 % of the rows match even as a multiset. So the
    matrix cannot be reproduced row by row from its own texts; what can be checked is below.
    """
    rules_path = shared_data / "sms_spam_implyloss" / "rule.txt"
    lfs = load_rule_file(rules_path, classes=SMS_CLASSES)
    assert len(lfs) == 73 and all(lf.uses_re2 for lf in lfs)
    ingest(con, IngestConfig(classes=SMS_CLASSES, sources=[SourceConfig(
        path=str(shared_data / "wrench_sms_partial" / "[tv]*.json"), dataset="sms", format="wrench")]))
    item_ids, L = _matrix(con, lfs)
    rows = con.execute("SELECT item_id, text, gold FROM items ORDER BY item_id").fetchall()
    gold = np.array([r[2] for r in rows])
    # 1. Identical to ImplyLoss's own semantics (Python re on lower-cased text), every cell.
    raw_rules = [line.split("\t") for line in rules_path.read_text().splitlines()]
    expected = np.array([[SMS_CLASSES.index(lab) if re.search(p, t.lower()) else -1 for lab, p, *_ in raw_rules]
                         for _, t, _ in rows])
    np.testing.assert_array_equal(L, expected)
    # 2. The shipped matrix, aligned to the same items.
    shipped = {}
    for split in ("valid", "test"):
        for key, entry in json.loads((shared_data / "wrench_sms_partial" / f"{split}.json").read_text()).items():
            shipped[f"sms:{split}:{key}"] = entry["weak_labels"]
    W = np.array([shipped[i] for i in item_ids])
    accuracy = lambda M: float((M == gold[:, None])[M != -1].mean())  # noqa: E731
    assert accuracy(L) >= 0.95 and accuracy(W) <= 0.82
    counts_L, counts_W = (L != -1).sum(axis=0), (W != -1).sum(axis=0)
    # Measured: 505 shipped firings, |per-LF count difference| summed = 94; the big LFs agree exactly.
    assert np.abs(counts_L - counts_W).sum() <= 0.2 * counts_W.sum()
    assert counts_L.max() == counts_W.max() == 285
    multiset = sum((Counter(map(tuple, L)) & Counter(map(tuple, W))).values())
    assert 0.75 * len(L) <= multiset < len(L)


def _sms_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [{"text": r["v2"], "gold": r["v1"]} for r in csv.DictReader(handle)]


def test_sms_train_matrix_from_rules_and_label_model_f1(con, shared_data, tmp_path):
    for split in ("train", "valid", "test"):
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in _sms_rows(shared_data / "sms_spam_implyloss" / f"{split}.csv")))
    ingest(con, IngestConfig(classes=SMS_CLASSES, sources=[
        SourceConfig(path=str(tmp_path / f"{s}.jsonl"), dataset="sms", split=s, columns={"gold": "gold"}, row_ids="line")
        for s in ("train", "valid", "test")]))
    # row_ids="line" keeps the 294 repeated messages of train as rows of their own, as WRENCH does.
    assert con.execute("SELECT count(*) FROM items WHERE split = 'train'").fetchall()[0][0] == 4502
    config = LabelingConfig(classes=SMS_CLASSES, lfs=[{"kind": "rule_file", "path": str(shared_data / "sms_spam_implyloss" / "rule.txt")}],
                            model={"fit_splits": ["train"]})
    summary = label(con, config, run_id="sms")
    test = summary.accuracy["test"]
    # Measured: LabelModel F1(spam) 0.29 vs majority vote 0.29 on test; coverage ~0.40, and the
    # uncovered items (a uniform prior: a tie) go to a class drawn per item.
    assert test["denoised_f1"] >= test["majority_vote_f1"] and test["denoised_f1"] > 0.25
    assert 0.35 <= test["coverage"] <= 0.45


def _trec_jsonl(src: Path, dst: Path, *, fine_label: bool) -> None:
    lines = []
    for line in src.read_text(encoding="latin-1").splitlines():
        coarse, _, question = line.partition(":")
        if fine_label:
            question = question.split(" ", 1)[1]
        lines.append(json.dumps({"text": question, "gold": coarse}))
    dst.write_text("\n".join(lines) + "\n")


def ingest_trec(con, shared_data: Path, tmp_path: Path) -> Path:
    """TREC's train, valid and test splits as items with coarse gold labels; returns its folder."""
    folder = shared_data / "trec_implyloss"
    for split in ("train", "valid", "test"):
        _trec_jsonl(folder / f"{split}.txt", tmp_path / f"{split}.jsonl", fine_label=split == "test")
    ingest(con, IngestConfig(classes=TREC_CLASSES, sources=[
        SourceConfig(path=str(tmp_path / f"{s}.jsonl"), dataset="trec", split=s, columns={"gold": "gold"})
        for s in ("train", "valid", "test")]))
    return folder


def test_trec_rules_multiclass_with_selection_on_valid(con, shared_data, tmp_path):
    folder = ingest_trec(con, shared_data, tmp_path)
    config = LabelingConfig(classes=TREC_CLASSES, lfs=[{"kind": "rule_file", "path": str(folder / "rule.txt"), "label_map": TREC_LONG}],
                            model={"fit_splits": ["train"], "select_on": "valid"})
    summary = label(con, config, run_id="trec")
    assert summary.n_lfs == 68
    test = summary.accuracy["test"]
    # Measured (ties broken per item, not to the first class): selection on the gold valid split
    # picks the LabelModel with lr=0.003, 0.598 on test; majority vote gets 0.614 there. Every
    # candidate, both Dawid-Skene models included, was scored, and the best on valid was kept.
    models = {entry["model"] for entry in summary.selection}
    assert models == {"label_model", "majority", "dawid_skene", "one_coin"}
    best = max(entry["dev_accuracy"] for entry in summary.selection)
    assert [e["dev_accuracy"] for e in summary.selection if {**e, "dev_accuracy": None} == {**summary.model, "dev_accuracy": None}] == [best]
    assert test["denoised"] > 0.55 and abs(test["denoised"] - test["majority_vote"]) < 0.05, (test, summary.model)
