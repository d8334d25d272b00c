"""Benchmark: label models on every shared dataset with LF votes or per-worker labels, no gold used.

Datasets (vote matrices built here from the shared files):
  youtube        WRENCH youtube, the 10 shipped LF votes, train+valid+test (1,956 items)
  sms (wrench)   WRENCH sms valid+test, the 73 shipped regex-LF votes (1,000 items)
  sms rules      ImplyLoss SMS train+valid+test, the 73 rules of rule.txt applied by thresher (5,502)
  trec rules     ImplyLoss TREC train+valid+test, 6 classes, the 68 rules of rule.txt (5,965)
  rte crowd      RTE-1, one LF per MTurk worker (164), 10 labels per pair (800)
  music crowd    GTZAN genres, one LF per MTurk worker (44), 10 classes (700)
  web relevance  web search relevance (Zhou et al. 2012): 177 workers, 5 grades, ~6 per item (2,653)
  quiz <set>     the six quiz sets of Li et al. 2017: every worker answers every question (36-111
                 workers, 20-36 questions, 4-6 options); the majority is often wrong
Every model is fitted on all items of the dataset (transductive, as crowd aggregation is used), with
thresher's defaults; no model sees a gold label, and ``auto`` chooses by held-out vote agreement
(labeling/auto.py, overlapping rules hidden together; a lead under two standard errors is a tie,
decided by the stated fallback rule). Scores are over the items some LF voted on (what the later stages read), ties
broken per item (labeling.ties.hard_labels): accuracy, and F1 of class 1 (binary) or macro F1.
"best - auto" is how far auto ends below the best candidate, by accuracy and by F1, among those
that auto may choose there (not left out for a stated reason: the Dawid-Skene models on one-class
LFs) and that do not give every covered item one class (marked "one class": a constant answer's
accuracy is the class share, not a label model's).

The second table checks the rule-noise sets' labels (majority vote of the rules, covered items, ties
broken per item; 46 % wrong on TREC) with thresher's detect stage at its defaults (``C: auto``) and
with ``C: 1``, ``min_df: 1`` (the former defaults), against cleanlab's ``find_label_issues`` called
directly on scikit-learn out-of-fold probabilities of TF-IDF (``min_df`` 2, 1-2-grams, sublinear) +
logistic regression (``C`` 10), 5 folds: F1 and AUROC at finding labels that differ from gold.

    .venv/bin/python -m benchmarks.label_models
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.metrics import f1_score

from thresher.labeling.config import DenoiseConfig
from thresher.labeling.lf.base import ABSTAIN, Row
from thresher.labeling.lf.rules import load_rule_file
from thresher.labeling.model import fit_denoiser
from thresher.labeling.ties import hard_labels
from benchmarks.shared import SHARED

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["majority", "label_model", "dawid_skene", "one_coin", "auto"]
TREC_CLASSES = ["DESC", "ENTY", "HUM", "ABBR", "LOC", "NUM"]
TREC_LONG = {"DESCRIPTION": "DESC", "ENTITY": "ENTY", "HUMAN": "HUM", "ABBREVIATION": "ABBR",
             "LOCATION": "LOC", "NUMERIC": "NUM"}


def _wrench(folder: str, splits: list[str]) -> tuple[np.ndarray, np.ndarray]:
    L, y = [], []
    for split in splits:
        for entry in json.loads((SHARED / folder / f"{split}.json").read_text()).values():
            L.append(entry["weak_labels"])
            y.append(entry["label"])
    return np.array(L), np.array(y)


def _rules(folder: str, classes: list[str], label_map: dict[str, str] | None,
           rows: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    lfs = load_rule_file(SHARED / folder / "rule.txt", classes=classes, label_map=label_map)
    return np.array([[lf(Row(text=text)) for lf in lfs] for text, _ in rows]), np.array([g for _, g in rows])


def _sms_rows() -> list[tuple[str, int]]:
    rows = []
    for split in ("train", "valid", "test"):
        with (SHARED / "sms_spam_implyloss" / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
            rows += [(r["v2"], 1 if r["v1"] == "spam" else 0) for r in csv.DictReader(handle)]
    return rows


def _trec_rows() -> list[tuple[str, int]]:
    rows = []
    for split in ("train", "valid", "test"):
        for line in (SHARED / "trec_implyloss" / f"{split}.txt").read_text(encoding="latin-1").splitlines():
            label, _, text = line.partition(":")
            rows.append((text, TREC_CLASSES.index(label)))
    return rows


def _crowd(answers: list[tuple[str, str, int]], gold: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """One column per worker from (item, worker, label) answers."""
    items = sorted({a[0] for a in answers})
    workers = sorted({a[1] for a in answers})
    row, col = {k: i for i, k in enumerate(items)}, {k: j for j, k in enumerate(workers)}
    L = np.full((len(items), len(workers)), ABSTAIN)
    for item, worker, value in answers:
        L[row[item], col[worker]] = value
    return L, np.array([gold[i] for i in items])


def _rte() -> tuple[np.ndarray, np.ndarray]:
    with (SHARED / "snow2008_rte_crowd" / "rte.standardized.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return _crowd([(r["orig_id"], r["!amt_worker_ids"], int(r["response"])) for r in rows],
                  {r["orig_id"]: int(r["gold"]) for r in rows})


def _music() -> tuple[np.ndarray, np.ndarray]:
    with (SHARED / "music_genre_mturk_rodrigues" / "mturk_answers.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    classes = sorted({r["Input.true_label"] for r in rows})
    return _crowd([(r["Input.song"], r["WorkerID"], classes.index(r["Answer.pred_label"])) for r in rows],
                  {r["Input.song"]: classes.index(r["Input.true_label"]) for r in rows})


def _long_answers(folder: str) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """The (item, worker, answer) rows and the gold of a shared crowd set in long form."""
    with (SHARED / folder / "answers.csv").open(encoding="utf-8", newline="") as handle:
        answers = [(r["item"], r["worker"], r["answer"]) for r in csv.DictReader(handle)]
    with (SHARED / folder / "gold.csv").open(encoding="utf-8", newline="") as handle:
        gold = {r["item"]: r["gold"] for r in csv.DictReader(handle)}
    return answers, gold


def _web() -> tuple[np.ndarray, np.ndarray]:
    """Web search relevance: 5 grades, 177 workers; the items with expert gold (2,653 of 2,665)."""
    answers, gold = _long_answers("zhou2012_web_search_relevance_crowd")
    grades = sorted({a for _, _, a in answers} | set(gold.values()))
    return _crowd([(i, w, grades.index(a)) for i, w, a in answers if i in gold],
                  {i: grades.index(g) for i, g in gold.items()})


def _quiz(subset: str) -> tuple[int, np.ndarray, np.ndarray]:
    """One quiz set: option letters as classes (positions, not shared meanings), every worker answers all."""
    answers, gold = _long_answers("li2017_quiz_crowd")
    rows = [(i, w, a) for i, w, a in answers if i.startswith(subset + "_")]
    letters = sorted({a for _, _, a in rows} | {g for i, g in gold.items() if i.startswith(subset + "_")})
    return len(letters), *_crowd([(i, w, letters.index(a)) for i, w, a in rows],
                                 {i: letters.index(g) for i, g in gold.items() if i.startswith(subset + "_")})


QUIZZES = ["CHINESE", "ENGLISH", "ITMANAGE", "MEDICINE", "POKEMON", "SCIENCE"]


def datasets() -> Iterator[tuple[str, int, np.ndarray, np.ndarray]]:
    """(name, classes, L, gold) of every shared dataset with votes or per-worker labels."""
    yield "youtube", 2, *_wrench("wrench_youtube", ["train", "valid", "test"])
    yield "sms (wrench)", 2, *_wrench("wrench_sms_partial", ["valid", "test"])
    yield "sms rules", 2, *_rules("sms_spam_implyloss", ["ham", "spam"], None, _sms_rows())
    yield "trec rules", 6, *_rules("trec_implyloss", TREC_CLASSES, TREC_LONG, _trec_rows())
    yield "rte crowd", 2, *_rte()
    yield "music crowd", 10, *_music()
    yield "web relevance crowd", 5, *_web()
    for subset in QUIZZES:
        yield f"quiz {subset.lower()}", *_quiz(subset)


def evaluate(L: np.ndarray, gold: np.ndarray, K: int, model: str) -> dict:
    start = time.perf_counter()
    fitted = fit_denoiser(L, cardinality=K, config=DenoiseConfig(model=model))
    probs = fitted.predict_proba(L)
    seconds = time.perf_counter() - start
    tie_hash = np.random.default_rng(0).integers(0, 2**63, size=len(L), dtype=np.uint64)
    label, _ = hard_labels(probs, tie_hash)
    covered = (L != ABSTAIN).any(axis=1)
    y, p = gold[covered], label[covered]
    f1 = f1_score(y, p, average="binary" if K == 2 else "macro", zero_division=0)
    return {"accuracy": float((y == p).mean()), "f1": float(f1), "seconds": seconds, "chosen": fitted.params["model"],
            "selection": fitted.selection, "constant": len(np.unique(p)) == 1}


def _rule_noise() -> Iterator[tuple[str, list[str], list[str], np.ndarray, np.ndarray]]:
    """(name, classes, texts, rule label, gold) of the covered items of each rule set."""
    for name, classes, folder, label_map, rows in [
            ("sms rules", ["ham", "spam"], "sms_spam_implyloss", None, _sms_rows()),
            ("trec rules", TREC_CLASSES, "trec_implyloss", TREC_LONG, _trec_rows())]:
        L, gold = _rules(folder, classes, label_map, rows)
        covered = (L != ABSTAIN).any(axis=1)
        fitted = fit_denoiser(L, cardinality=len(classes), config=DenoiseConfig(model="majority"))
        tie_hash = np.random.default_rng(0).integers(0, 2**63, size=len(L), dtype=np.uint64)
        label, _ = hard_labels(fitted.predict_proba(L), tie_hash)
        yield name, classes, [t for (t, _), c in zip(rows, covered) if c], label[covered], gold[covered]


def _thresher_detect(classes: list[str], texts: list[str], labels: np.ndarray, gold: np.ndarray,
                     **settings: object) -> dict:
    import tempfile

    from thresher.reweighting.detect.stage import DetectConfig, detect
    from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
    from thresher.storage.schema import connect

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        path.write_text("".join(json.dumps({"id": str(i), "text": t, "label": int(y), "gold": int(g)}) + "\n"
                                for i, (t, y, g) in enumerate(zip(texts, labels, gold))))
        con = connect(Path(tmp) / "t.duckdb")
        ingest(con, IngestConfig(classes=classes, sources=[SourceConfig(
            path=str(path), dataset="d", columns={"id": "id", "label": "label", "gold": "gold"})]))
        start = time.perf_counter()
        summary = detect(con, DetectConfig(labels_from="given", **settings), run_id="d", label_run=None, classes=classes)
        seconds = time.perf_counter() - start
        con.close()
    found = summary.detectors["confident_learning"]
    return {"flags": summary.n_issues, "f1": found["f1"], "auroc": found["auroc"], "seconds": seconds,
            "C": summary.features["C"], "min_df": summary.features["min_df"]}


def _cleanlab_direct(texts: list[str], labels: np.ndarray, gold: np.ndarray) -> dict:
    from cleanlab.filter import find_label_issues
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    start = time.perf_counter()
    keep = np.isin(labels, np.flatnonzero(np.bincount(labels) >= 5))  # cross_val_predict needs 5 per class
    y = np.unique(labels[keep], return_inverse=True)[1]
    X = TfidfVectorizer(min_df=2, ngram_range=(1, 2), sublinear_tf=True).fit_transform([t for t, k in zip(texts, keep) if k])
    probs = cross_val_predict(LogisticRegression(C=10, max_iter=2000), X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                              method="predict_proba")
    flags = find_label_issues(y, probs)
    wrong = labels[keep] != gold[keep]
    hits = int((flags & wrong).sum())
    precision, recall = hits / max(int(flags.sum()), 1), hits / max(int(wrong.sum()), 1)
    return {"flags": int(flags.sum()), "f1": 2 * precision * recall / max(precision + recall, 1e-12),
            "auroc": float(roc_auc_score(wrong, -probs[np.arange(len(y)), y])), "seconds": time.perf_counter() - start,
            "C": 10.0, "min_df": 2}


def detect_table(console: Console) -> None:
    table = Table(title="Detect on rule noise: thresher's defaults vs cleanlab called directly")
    for column in ["dataset", "items", "wrong labels", "method", "C / min_df", "flags", "F1", "AUROC", "seconds"]:
        table.add_column(column)
    for name, classes, texts, labels, gold in _rule_noise():
        runs = {"thresher (C: auto)": _thresher_detect(classes, texts, labels, gold),
                "thresher (C: 1, min_df: 1)": _thresher_detect(classes, texts, labels, gold, C=1.0,
                                                               features={"tfidf": {"min_df": 1}}),
                "cleanlab direct": _cleanlab_direct(texts, labels, gold)}
        for method, r in runs.items():
            table.add_row(name, str(len(labels)), f"{(labels != gold).mean():.3f}", method, f"{r['C']:g} / {r['min_df']}",
                          str(r["flags"]), f"{r['f1']:.3f}", f"{r['auroc']:.3f}", f"{r['seconds']:.1f}")
    console.print(table)


def main() -> None:
    console = Console(width=220)
    console.print(f"snorkel {version('snorkel')}, crowd-kit {version('crowd-kit')}, numpy {version('numpy')}")
    table = Table(title="Label models without gold (covered items; accuracy / F1)")
    for column in ["dataset", "items", "LFs", "coverage", *MODELS, "auto chose", "best - auto"]:
        table.add_column(column)
    results = {}
    for name, K, L, gold in datasets():
        scores = {model: evaluate(L, gold, K, model) for model in MODELS}
        results[name] = scores
        left_out = {e["model"] for e in scores["auto"]["selection"] if "excluded" in e and not e.get("chosen")}
        useful = [m for m in MODELS[:-1] if not scores[m]["constant"] and m not in left_out]
        best = {metric: max(scores[m][metric] for m in useful) for metric in ("accuracy", "f1")}
        table.add_row(name, str(len(L)), str(L.shape[1]), f"{(L != ABSTAIN).any(axis=1).mean():.3f}",
                      *(f"{scores[m]['accuracy']:.3f} / {scores[m]['f1']:.3f}" + (" (one class)" if scores[m]["constant"] else "")
                        for m in MODELS),
                      scores["auto"]["chosen"],
                      " / ".join(f"{best[metric] - scores['auto'][metric]:+.3f}" for metric in ("accuracy", "f1")))
        console.print(f"{name}: auto's criterion " + ", ".join(
            (f"{e['model']} {e['heldout_agreement']:.4f}"
             + (f" ({e['standard_errors_behind']:g} SE behind)" if "standard_errors_behind" in e else ""))
            if "heldout_agreement" in e else f"{e['model']} left out"
            for e in scores["auto"]["selection"] if "model" in e), highlight=False)
    console.print(table)
    detect_table(console)


if __name__ == "__main__":
    main()
