"""Benchmark: does a model trained on thresher's export beat one trained on the Snorkel or cleanlab path?

For every shared dataset with weak or noisy labels the same end models are trained on the training
items of each path and scored on the dataset's test split (accuracy; spam F1 on SMS, as ImplyLoss
and WRENCH report it):

  snorkel       Snorkel's LabelModel (fitted on the training votes), hard labels of the covered items
  majority      Snorkel's MajorityLabelVoter, hard labels of the covered items
  cleanlab      the snorkel labels minus cleanlab's ``find_label_issues`` on 5-fold out-of-fold
                probabilities of TF-IDF + logistic regression (scikit-learn, by hand)
  thresher      thresher's export at the defaults ``thresher init`` writes (label, detect, export),
                read from its shards as the manifest says: target column, weight, what it left out
  recipes       built from the same thresher run's tables (labels, probabilities, detect flags and
                scores, reweight weights): see RECIPES
  gold          the gold labels of every training item (the ceiling)

End models: logistic regression (C 1; newton-cg, which reaches scikit-learn's default lbfgs optimum
10-30x sooner on these features) on TF-IDF of the texts (word 1-2-grams, min_df 2, sublinear)
and on the static MiniLM embeddings (thresher's ``minilm-static``), or on the standardised audio
features for the music set; and on text sets the bundled torch worker (examples/train_worker.py's
model, loss and optimiser, trained in-process; see TorchWorker). Weights go in as ``sample_weight``;
soft labels as one row per class weighted by its probability (the worker: cross-entropy against them). Each path's preparation time is printed beside its score (the end
model's fit is not part of it).

Every number is the mean (± std) over ``--seeds`` seeds: a seed sets the label models' and
detectors' random state, the folds, and STORM's initialisation. Test gold is used only to score.
The default is chosen on the validation splits, never on test: the recipe with the best mean rank
by validation score over datasets and end models (printed last). It was ``down-weight``, which
thresher's defaults now are (``export.target: hard``, ``detect.weight: flagged_quality``,
``export.drop_label_issues: false``), so the ``thresher`` row is that recipe through the real export.

    .venv/bin/python -m benchmarks.curation_value               # every dataset, 3 seeds
    .venv/bin/python -m benchmarks.curation_value --datasets youtube --seeds 1
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from benchmarks.shared import SHARED

ROOT = Path(__file__).resolve().parents[1]
TREC_CLASSES = ["DESC", "ENTY", "HUM", "ABBR", "LOC", "NUM"]
TREC_LONG = {"DESCRIPTION": "DESC", "ENTITY": "ENTY", "HUMAN": "HUM", "ABBREVIATION": "ABBR",
             "LOCATION": "LOC", "NUMERIC": "NUM"}
ABSTAIN = -1


@dataclass
class Split:
    texts: list[str]
    gold: np.ndarray
    numeric: np.ndarray | None = None


@dataclass
class Data:
    """One dataset: training items with votes (one column per LF or worker), valid and test with gold."""

    name: str
    classes: list[str]
    metric: str  # accuracy | f1 (of class 1)
    train: Split
    L: np.ndarray
    valid: Split
    test: Split
    features: dict = field(default_factory=dict)  # thresher's detect/reweight features (default TF-IDF)

    @property
    def numeric(self) -> bool:
        return self.train.numeric is not None


# ---------------------------------------------------------------- datasets

def _wrench(folder: str, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    entries = json.loads((SHARED / folder / f"{split}.json").read_text()).values()
    return ([e["data"]["text"] for e in entries], np.array([e["weak_labels"] for e in entries]),
            np.array([e["label"] for e in entries]))


def youtube() -> Data:
    (tt, L, tg), (vt, _, vg), (st, _, sg) = (_wrench("wrench_youtube", s) for s in ("train", "valid", "test"))
    return Data("youtube", ["ham", "spam"], "accuracy", Split(tt, tg), L, Split(vt, vg), Split(st, sg))


def _rule_votes(folder: str, classes: list[str], label_map: dict | None, texts: list[str]) -> np.ndarray:
    from thresher.labeling.lf.base import Row
    from thresher.labeling.lf.rules import load_rule_file

    lfs = load_rule_file(SHARED / folder / "rule.txt", classes=classes, label_map=label_map)
    return np.array([[lf(Row(text=t)) for lf in lfs] for t in texts])


def sms() -> Data:
    def read(split: str) -> Split:
        with (SHARED / "sms_spam_implyloss" / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        return Split([r["v2"] for r in rows], np.array([1 if r["v1"] == "spam" else 0 for r in rows]))

    train, valid, test = read("train"), read("valid"), read("test")
    return Data("sms", ["ham", "spam"], "f1", train, _rule_votes("sms_spam_implyloss", ["ham", "spam"], None,
                                                                 train.texts), valid, test)


def trec() -> Data:
    def read(split: str) -> Split:
        lines = (SHARED / "trec_implyloss" / f"{split}.txt").read_text(encoding="latin-1").splitlines()
        rows = [line.partition(":")[::2] for line in lines if line.strip()]
        return Split([t for _, t in rows], np.array([TREC_CLASSES.index(c) for c, _ in rows]))

    train, valid, test = read("train"), read("valid"), read("test")
    return Data("trec", TREC_CLASSES, "accuracy", train,
                _rule_votes("trec_implyloss", TREC_CLASSES, TREC_LONG, train.texts), valid, test)


def _cosine(folder: str, classes: list[str], n_train: int, n_valid: int, n_test: int) -> Data:
    """COSINE's subsets: ``major`` is the aggregated rule label (-1: no rule fired), ``label`` gold."""
    rng = np.random.default_rng(0)
    dev = json.loads((SHARED / folder / "dev_data.json").read_text())
    test = json.loads((SHARED / folder / "test_data.json").read_text())
    order = rng.permutation(len(dev))
    pick = lambda rows, idx: ([rows[i]["text"] for i in idx], np.array([rows[i]["label"] for i in idx]))  # noqa: E731
    tt, tg = pick(dev, order[:n_train])
    vt, vg = pick(dev, order[n_train:n_train + n_valid])
    st, sg = pick(test, rng.permutation(len(test))[:n_test])
    L = np.array([[dev[i]["major"]] for i in order[:n_train]])
    name = folder.split("_")[1]
    return Data(name, classes, "accuracy", Split(tt, tg), L, Split(vt, vg), Split(st, sg))


def agnews() -> Data:
    return _cosine("cosine_agnews_devtest", ["World", "Sports", "Business", "Sci/Tech"], 6000, 1000, 3000)


def imdb() -> Data:
    return _cosine("cosine_imdb_devtest", ["negative", "positive"], 2000, 500, 2500)


def _crowd_matrix(answers: list[tuple[str, str, int]], items: list[str]) -> np.ndarray:
    workers = sorted({w for _, w, _ in answers})
    row, col = {k: i for i, k in enumerate(items)}, {k: j for j, k in enumerate(workers)}
    L = np.full((len(items), len(workers)), ABSTAIN)
    for item, worker, value in answers:
        if item in row:
            L[row[item], col[worker]] = value
    return L


def music() -> Data:
    folder = SHARED / "music_genre_mturk_rodrigues"
    with (folder / "mturk_answers.csv").open(encoding="utf-8", newline="") as handle:
        answers = list(csv.DictReader(handle))
    classes = sorted({r["Input.true_label"] for r in answers})
    labelled = pd.read_csv(folder / "music_genre_gold.csv")
    test = pd.read_csv(folder / "music_genre_test.csv")
    features = [c for c in labelled.columns if c.startswith("feature")]
    order = np.random.default_rng(0).permutation(len(labelled))
    train, valid = labelled.iloc[order[:600]], labelled.iloc[order[600:]]
    split = lambda f: Split(list(f["id"]), np.array([classes.index(c) for c in f["class"]]),  # noqa: E731
                            f[features].to_numpy(float))
    L = _crowd_matrix([(r["Input.song"], r["WorkerID"], classes.index(r["Answer.pred_label"])) for r in answers],
                      list(train["id"]))
    return Data("music", classes, "accuracy", split(train), L, split(valid), split(test),
                features={"encoder": "numeric", "numeric_columns": features})


def rte() -> Data:
    folder = SHARED / "snow2008_rte_crowd"
    with (folder / "rte.standardized.tsv").open(encoding="utf-8", newline="") as handle:
        answers = list(csv.DictReader(handle, delimiter="\t"))
    with (folder / "rte1.tsv").open(encoding="utf-8", newline="") as handle:
        pairs = {r["id"]: f"{r['text']} || {r['hypothesis']}" for r in csv.DictReader(handle, delimiter="\t")}
    gold = {r["orig_id"]: int(r["gold"]) for r in answers}
    ids = sorted(i for i in gold if i in pairs)
    order = np.random.default_rng(0).permutation(len(ids))
    parts = [[ids[i] for i in order[a:b]] for a, b in ((0, 560), (560, 640), (640, len(ids)))]
    split = lambda part: Split([pairs[i] for i in part], np.array([gold[i] for i in part]))  # noqa: E731
    L = _crowd_matrix([(r["orig_id"], r["!amt_worker_ids"], int(r["response"])) for r in answers], parts[0])
    return Data("rte", ["false", "true"], "accuracy", split(parts[0]), L, split(parts[1]), split(parts[2]))


def youtube_demo() -> Data:
    """The UCI YouTube comments of the bundled demo (videos 1-4 train, 5 test; 150 train rows drawn as
    valid) with the demo's 8 rule LFs (keyword, regex, Python; its prompted LFs left out), applied by
    thresher's label stage."""
    import yaml

    import thresher

    example = ROOT / "examples" / "youtube"
    config = yaml.safe_load((example / "thresher.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        lfs = [lf for lf in config["labeling"]["lfs"] if lf["kind"] != "prompt"]
        for lf in lfs:
            if lf["kind"] == "python":
                lf["function"] = str(example / lf["function"])
        sources = [{**source, "path": str(example / source["path"])} for source in config["sources"]]
        pipe = thresher.Pipeline({"db": str(Path(tmp) / "t.duckdb"), "classes": config["classes"], "sources": sources,
                                  "labeling": {"lfs": lfs, "model": {"model": "majority"}},
                                  "export": {"out_dir": str(Path(tmp) / "e")}})
        pipe.run_stage("ingest")
        pipe.run_stage("label")
        items = pipe.sql("select item_id, split, text, gold from items order by item_id")
        votes = pipe.sql("select l.lf, v.item_id, v.vote from lfs l join lf_votes v using (version) "
                         "where l.run_id = (select run_id from latest_runs where stage = 'label')")
    names = sorted(votes["lf"].unique())
    row = {item: i for i, item in enumerate(items["item_id"])}
    L = np.full((len(items), len(names)), ABSTAIN)
    L[votes["item_id"].map(row).to_numpy(), votes["lf"].map({n: j for j, n in enumerate(names)}).to_numpy()] = votes["vote"]
    train = np.flatnonzero(items["split"].to_numpy() == "train")
    test = np.flatnonzero(items["split"].to_numpy() == "test")
    order = np.random.default_rng(0).permutation(train)
    valid, train = np.sort(order[:150]), np.sort(order[150:])
    texts, gold = items["text"].tolist(), items["gold"].to_numpy().astype(int)
    split = lambda idx: Split([texts[i] for i in idx], gold[idx])  # noqa: E731
    return Data("youtube-demo", [c.lower() for c in config["classes"]], "accuracy", split(train), L[train],
                split(valid), split(test))


DATASETS: dict[str, Callable[[], Data]] = {"youtube": youtube, "sms": sms, "trec": trec, "agnews": agnews,
                                           "imdb": imdb, "music": music, "rte": rte, "youtube-demo": youtube_demo}


# ---------------------------------------------------------------- training sets

@dataclass
class TrainSet:
    """Which training items, with which labels (hard, or soft: N x K) and weights; and how long it took."""

    index: np.ndarray
    labels: np.ndarray  # hard labels (N,) or probabilities (N, K)
    weights: np.ndarray | None = None
    seconds: float = 0.0


def score(metric: str, gold: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    if metric == "f1":
        return float(f1_score(gold, pred, zero_division=0))
    return float((gold == pred).mean())


def oof_probs(X, labels: np.ndarray, K: int, seed: int) -> np.ndarray:
    """5-fold out-of-fold probabilities of logistic regression (C 1), as cleanlab's docs compute them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros((len(labels), K))
    counts = np.bincount(labels, minlength=K)
    folds = StratifiedKFold(n_splits=max(2, min(5, int(counts[counts > 0].min()))), shuffle=True, random_state=seed)
    for fit, held in folds.split(X, labels):
        model = LogisticRegression(C=1.0, solver="newton-cg", max_iter=2000).fit(X[fit], labels[fit])
        probs[np.ix_(held, model.classes_)] = model.predict_proba(X[held])
    return probs


# ---------------------------------------------------------------- the paths

def snorkel_path(data: Data, seed: int) -> tuple[TrainSet, TrainSet, np.ndarray]:
    """(LabelModel hard labels, majority hard labels, the LabelModel's probabilities), by hand with Snorkel."""
    from snorkel.labeling.model import LabelModel, MajorityLabelVoter

    K = len(data.classes)
    started = time.perf_counter()
    mv = MajorityLabelVoter(cardinality=K).predict(data.L, tie_break_policy="abstain")
    majority = TrainSet(np.flatnonzero(mv != ABSTAIN), mv[mv != ABSTAIN], seconds=time.perf_counter() - started)
    if data.L.shape[1] < 3:  # the LabelModel needs three LFs: with one rule label, Snorkel's path is its vote
        return majority, majority, MajorityLabelVoter(cardinality=K).predict_proba(data.L)
    started = time.perf_counter()
    model = LabelModel(cardinality=K, verbose=False)
    model.fit(data.L, seed=seed, progress_bar=False)
    pred = model.predict(data.L, tie_break_policy="abstain")
    probs = model.predict_proba(data.L)
    lm = TrainSet(np.flatnonzero(pred != ABSTAIN), pred[pred != ABSTAIN], seconds=time.perf_counter() - started)
    return lm, majority, probs


def cleanlab_path(snorkel: TrainSet, X, K: int, seed: int) -> TrainSet:
    """The Snorkel labels minus what cleanlab's ``find_label_issues`` flags, by hand."""
    from cleanlab.filter import find_label_issues

    started = time.perf_counter()
    probs = oof_probs(X[snorkel.index], snorkel.labels, K, seed)
    issues = find_label_issues(snorkel.labels, probs)
    return TrainSet(snorkel.index[~issues], snorkel.labels[~issues], seconds=snorkel.seconds + time.perf_counter() - started)


@dataclass
class ThresherRun:
    """What one thresher run left in its database and export, aligned with the training items."""

    seconds: dict[str, float]
    label: np.ndarray      # -1: not decided (uncovered or tied)
    probs: np.ndarray      # N x K
    flagged: np.ndarray    # the detector in use's flags (False where not checked)
    quality: np.ndarray    # its label-quality score (1 where not checked)
    detect_weight: np.ndarray
    reweight_weight: np.ndarray
    export: TrainSet
    flags_used: bool = True  # false: detect's sanity checks set the flags aside (uniform weights)


def thresher_config(data: Data, work: Path, seed: int) -> dict:
    """What ``thresher init`` writes for a file with vote columns (label, detect, export at their
    defaults), with the seed in every random state."""
    features = data.features or {"encoder": "tfidf"}
    return {
        "project": data.name, "db": str(work / "thresher.duckdb"), "classes": data.classes,
        "labeling": {"source_votes": True,  # the LabelModel needs three LFs (thresher says so): majority below
                     "model": {"seed": seed, "model": "label_model" if data.L.shape[1] >= 3 else "majority"}},
        "detect": {"n_folds": 5, "random_state": seed, "features": features},
        "export": {"out_dir": str(work / "export")},
    }


def storm_config(config: dict, data: Data, seed: int) -> dict:
    """The same project with STORM's reweight stage, as the README shows it (for the storm recipe)."""
    return {**config, "reweight": {"strategy": "storm", "epochs": 5, "random_state": seed,
                                   "features": data.features or {"encoder": "tfidf"}}}


def position(item_ids: pd.Series) -> np.ndarray:
    """Row positions of thresher item ids: ``<dataset>:<id column>``, the id column being ``i<row>``."""
    return item_ids.str.rsplit(":", n=1).str[1].str[1:].astype(int).to_numpy()


def run_thresher(data: Data, config: dict, work: Path, seed: int) -> ThresherRun:
    import thresher
    from thresher.storage.loader import read_manifest

    n, m = data.L.shape
    frame = pd.DataFrame({"item": [f"i{i:06d}" for i in range(n)], "text": data.train.texts,
                          "gold": [data.classes[g] for g in data.train.gold]})
    for j in range(m):
        frame[f"v{j}"] = data.L[:, j]
    if data.numeric:
        for j, column in enumerate(data.features["numeric_columns"]):
            frame[column] = data.train.numeric[:, j]
    frame.to_parquet(work / "train.parquet")
    config["sources"] = [{"path": str(work / "train.parquet"), "dataset": data.name, "split": "train",
                          "columns": {"text": "text", "gold": "gold", "id": "item"},
                          "votes": {"columns": [f"v{j}" for j in range(m)], "abstain": -1}}]
    pipe = thresher.Pipeline(config)
    result = pipe.run()
    seconds = {row["stage"]: row["seconds"] for row in pipe.sql(
        "select stage, epoch(ended_at - started_at) as seconds from runs where run_id = "
        f"'{result.run_id}'").to_dict("records")}
    labels = pipe.sql("select item_id, label, probs, covered and decided as decided from labels "
                      "where run_id = (select run_id from latest_runs where stage = 'label')")
    idx = position(labels["item_id"])
    label = np.full(n, -1)
    label[idx] = np.where(labels["decided"], labels["label"], -1)
    probs = np.zeros((n, len(data.classes)))
    probs[idx] = np.stack(labels["probs"].to_numpy())
    detect = pipe.sql("select n.item_id, n.score, n.is_issue, w.weight from noise_scores n join weights w "
                      "using (run_id, item_id) where w.stage = 'detect' and n.detector = 'confident_learning' "
                      "and run_id = (select run_id from latest_runs where stage = 'detect')")
    flagged, quality, detect_weight = np.zeros(n, bool), np.ones(n), np.zeros(n)
    at = position(detect["item_id"])
    flagged[at], quality[at], detect_weight[at] = detect["is_issue"], detect["score"], detect["weight"]
    started = time.perf_counter()
    thresher.Pipeline(storm_config(config, data, seed)).run_stage("reweight")
    seconds["reweight (storm recipe)"] = time.perf_counter() - started
    storm = pipe.sql("select item_id, weight from weights where stage = 'reweight' "
                     "and run_id = (select run_id from latest_runs where stage = 'reweight')")
    reweight_weight = np.zeros(n)
    reweight_weight[position(storm["item_id"])] = storm["weight"]
    out = Path(config["export"]["out_dir"])
    shards = pd.read_parquet(out, columns=["item_id", "label", "probs", "weight"])
    target = read_manifest(out).get("target", {}).get("column", "label")  # what the manifest says to train on
    export = TrainSet(position(shards["item_id"]),
                      np.stack(shards["probs"].to_numpy()) if target == "probs" else shards["label"].to_numpy(),
                      shards["weight"].to_numpy(float),
                      seconds=sum(v for k, v in seconds.items() if k != "reweight (storm recipe)"))
    return ThresherRun(seconds, label, probs, flagged, quality, detect_weight, reweight_weight, export,
                       result.summaries["detect"].get("flags_used", True))


def balanced(weights: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from thresher.reweighting.weights import per_class_shares

    return per_class_shares(weights, labels)


def sharpened(probs: np.ndarray, temperature: float = 0.5) -> np.ndarray:
    """Probabilities raised to 1 / temperature and renormalised (0.5: squared)."""
    p = probs ** (1 / temperature)
    return p / p.sum(1, keepdims=True)


def prior_matched(probs: np.ndarray, labels: np.ndarray, K: int, iterations: int = 20) -> np.ndarray:
    """Probabilities reweighted per class so that their mean equals the hard labels' class shares (the
    prior adjustment of Saerens et al. 2002, run towards the hard labels' shares)."""
    target = np.bincount(labels, minlength=K) / len(labels)
    p = probs.copy()
    for _ in range(iterations):
        p = p * (target / np.maximum(p.mean(0), 1e-12))
        p /= p.sum(1, keepdims=True)
    return p


def extension(run: ThresherRun, X, K: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-labels for the items no LF decided: a classifier trained on the decided items' labels,
    kept where its confidence reaches the median confidence of its out-of-fold predictions that agree
    with the label model (gold-free: as sure as it usually is when it agrees)."""
    from sklearn.linear_model import LogisticRegression

    decided = np.flatnonzero(run.label >= 0)
    undecided = np.flatnonzero(run.label < 0)
    if not len(undecided):
        return undecided, undecided
    y = run.label[decided]
    oof = oof_probs(X[decided], y, K, seed)
    agree = oof.argmax(1) == y
    threshold = float(np.median(oof.max(1)[agree])) if agree.any() else 1.0
    model = LogisticRegression(C=1.0, solver="newton-cg", max_iter=2000).fit(X[decided], y)
    probs = np.zeros((len(undecided), K))
    probs[:, model.classes_] = model.predict_proba(X[undecided])
    keep = probs.max(1) >= threshold
    return undecided[keep], probs[keep].argmax(1)


def recipes(run: ThresherRun, X, K: int, seed: int) -> dict[str, TrainSet]:
    """Training sets built from one thresher run's tables (see the README's table for each)."""
    decided = np.flatnonzero(run.label >= 0)
    y = run.label[decided]
    flagged = run.flagged[decided]
    out: dict[str, TrainSet] = {}
    out["hard"] = TrainSet(decided, y)
    out["soft"] = TrainSet(decided, run.probs[decided])
    out["drop"] = TrainSet(decided[~flagged], y[~flagged])
    oof = oof_probs(X[decided], y, K, seed)
    out["relabel"] = TrainSet(decided, np.where(flagged, oof.argmax(1), y))
    out["down-weight"] = TrainSet(decided, y, balanced(np.where(flagged, run.quality[decided], 1.0), y))
    out["confidence"] = TrainSet(decided, y, balanced(run.probs[decided].max(1), y))
    out["label-quality"] = TrainSet(decided, y, balanced(run.quality[decided], y))
    out["storm"] = TrainSet(decided, y, run.reweight_weight[decided])
    out["soft-sharp"] = TrainSet(decided, sharpened(run.probs[decided]))
    out["soft-sharp4"] = TrainSet(decided, sharpened(run.probs[decided], 0.25))
    out["soft-prior"] = TrainSet(decided, prior_matched(run.probs[decided], y, K))
    out["soft+drop"] = TrainSet(decided[~flagged], run.probs[decided][~flagged])
    out["soft+label-quality"] = TrainSet(decided, run.probs[decided], out["label-quality"].weights)
    out["soft+down-weight"] = TrainSet(decided, run.probs[decided], out["down-weight"].weights)
    extra, pseudo = extension(run, X, K, seed)
    out["extend"] = TrainSet(np.concatenate([decided, extra]), np.concatenate([y, pseudo]))
    out["drop+extend"] = TrainSet(np.concatenate([decided[~flagged], extra]), np.concatenate([y[~flagged], pseudo]))
    soft_extra = np.eye(K)[pseudo]
    out["soft+extend"] = TrainSet(np.concatenate([decided, extra]), np.vstack([run.probs[decided], soft_extra]))
    return out


# ---------------------------------------------------------------- end models

def end_features(data: Data) -> dict[str, tuple]:
    """(train, valid, test) feature matrices of each end model."""
    if data.numeric:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(data.train.numeric)
        return {"lr-numeric": tuple(scaler.transform(s.numeric) for s in (data.train, data.valid, data.test))}
    from sklearn.feature_extraction.text import TfidfVectorizer

    from thresher.features.static import StaticEncoder

    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(data.train.texts)
    encoder = StaticEncoder()
    return {"lr-tfidf": tuple(tfidf.transform(s.texts) for s in (data.train, data.valid, data.test)),
            "lr-minilm-static": tuple(encoder.encode(s.texts) for s in (data.train, data.valid, data.test))}


def evaluate(data: Data, features: dict[str, tuple], train: TrainSet) -> dict[str, tuple[float, float]]:
    """(valid, test) score of each end model trained on ``train``."""
    from sklearn.linear_model import LogisticRegression

    from thresher.reweighting.proxy import soft_rows

    out = {}
    for name, (X, Xv, Xt) in features.items():
        rows, labels, weights = soft_rows(X[train.index], train.labels, train.weights)
        model = LogisticRegression(C=1.0, solver="newton-cg", max_iter=3000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(rows, labels, sample_weight=weights)
        out[name] = (score(data.metric, data.valid.gold, model.predict(Xv)),
                     score(data.metric, data.test.gold, model.predict(Xt)))
    return out


def _worker_module():
    """examples/train_worker.py, the bundled torch worker, imported for its model and hashing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_worker", ROOT / "examples" / "train_worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TorchWorker:
    """The bundled worker's model and loss (hashed 1-2-gram bag of words, Adagrad, 8 epochs of 64 rows,
    per-row cross-entropy against the hard label or the probabilities, times the weight, normalised by
    the batch's weight), trained in-process on a training set instead of read from shards."""

    def __init__(self, data: Data, epochs: int = 8, batch_size: int = 64, lr: float = 0.05,
                 buckets: int = 1 << 16, sparse: bool = True) -> None:
        self.worker, self.K, self.sparse = _worker_module(), len(data.classes), sparse
        self.epochs, self.batch_size, self.lr, self.buckets = epochs, batch_size, lr, buckets
        self.train = [self.worker.hash_tokens([text], buckets)[0] for text in data.train.texts]
        self.valid, self.test = (self.worker.hash_tokens(list(s.texts), buckets) for s in (data.valid, data.test))

    @staticmethod
    def _bag(rows: list):
        import torch

        offsets = torch.tensor(np.cumsum([0] + [len(r) for r in rows[:-1]]), dtype=torch.long)
        return torch.cat(rows), offsets

    def fit_predict(self, train: TrainSet, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Predicted classes on (valid, test) after training on ``train``."""
        import torch

        torch.manual_seed(seed)
        model = self.worker.BagOfWords(self.K, self.buckets)
        # Sparse embedding gradients: Adagrad (no weight decay) leaves rows without a gradient as they are
        # either way, so this is the worker's training, 3-5x sooner on CPU.
        model.embed.sparse = self.sparse
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(torch.randn(parameter.shape) * 0.01)
        optimizer = torch.optim.Adagrad(model.parameters(), lr=self.lr)
        warnings.filterwarnings("ignore", message="Sparse invariant checks")
        labels = torch.as_tensor(np.asarray(train.labels))
        soft = labels.ndim == 2
        weights = torch.as_tensor(np.ones(len(train.index)) if train.weights is None else train.weights,
                                  dtype=torch.float32)
        rng = np.random.default_rng(seed)
        for _ in range(self.epochs):
            order = rng.permutation(len(train.index))
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                logits = model(*self._bag([self.train[i] for i in train.index[batch]]))
                per_row = (self.worker.per_row_loss(logits, None, labels[batch].float()) if soft
                           else self.worker.per_row_loss(logits, labels[batch].long(), None))
                loss = self.worker.weighted_loss(per_row, weights[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return tuple(model(ids, offsets).argmax(1).numpy() for ids, offsets in (self.valid, self.test))


PATHS = ["snorkel", "majority", "cleanlab", "thresher", "hard", "soft", "drop", "relabel", "down-weight",
         "confidence", "label-quality", "storm", "soft-sharp", "soft-sharp4", "soft-prior", "soft+drop", "soft+label-quality", "soft+down-weight", "extend",
         "drop+extend", "soft+extend", "gold"]
RECIPES = PATHS[4:-1]


def run_dataset(data: Data, seeds: list[int], console: Console) -> list[dict]:
    rows = []
    features = end_features(data)
    X_detect = features.get("lr-tfidf", features.get("lr-numeric"))[0]
    K = len(data.classes)
    worker = None if data.numeric else TorchWorker(data)
    for seed in seeds:
        work = Path(tempfile.mkdtemp(prefix=f"curation-{data.name}-"))
        try:
            lm, majority, _ = snorkel_path(data, seed)
            sets = {"snorkel": lm, "majority": majority, "cleanlab": cleanlab_path(lm, X_detect, K, seed)}
            run = run_thresher(data, thresher_config(data, work, seed), work, seed)
            sets["thresher"] = run.export
            for name, train in recipes(run, X_detect, K, seed).items():
                sets[name] = train
            # the defaults' recipe (hard labels when detect's sanity checks set the flags aside): the export
            # must be exactly it
            recipe = "down-weight" if run.flags_used else "hard"
            chosen = sets[recipe]
            order = np.argsort(run.export.index)
            weights = np.ones(len(chosen.index)) if chosen.weights is None else chosen.weights
            same = (np.array_equal(np.sort(chosen.index), run.export.index[order])
                    and np.allclose(weights[np.argsort(chosen.index)], run.export.weights[order], atol=1e-5)
                    and np.allclose(chosen.labels[np.argsort(chosen.index)], run.export.labels[order], atol=1e-5))
            sets["gold"] = TrainSet(np.arange(len(data.train.gold)), data.train.gold)
            for path, train in sets.items():
                scores = evaluate(data, features, train)
                if worker is not None:
                    valid_pred, test_pred = worker.fit_predict(train, seed)
                    scores["torch-worker"] = (score(data.metric, data.valid.gold, valid_pred),
                                              score(data.metric, data.test.gold, test_pred))
                for model, (valid, test) in scores.items():
                    rows.append({"dataset": data.name, "seed": seed, "path": path, "model": model, "valid": valid,
                                 "test": test, "items": len(train.index), "seconds": train.seconds})
            console.print(f"{data.name} seed {seed}: thresher stages {json.dumps({k: round(v, 1) for k, v in run.seconds.items()})}"
                          f"; export = the {recipe} recipe: {'yes' if same else 'NO'}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def choose_default(frame: pd.DataFrame) -> pd.Series:
    """Mean rank of each recipe by validation score, over datasets and end models (1: best)."""
    candidates = frame[frame["path"].isin(RECIPES)]
    mean = candidates.groupby(["dataset", "model", "path"])["valid"].mean().reset_index()
    mean["rank"] = mean.groupby(["dataset", "model"])["valid"].rank(ascending=False)
    return mean.groupby("path")["rank"].mean().sort_values()


def report(frame: pd.DataFrame, console: Console) -> None:
    stats = frame.groupby(["dataset", "model", "path"])["test"].agg(["mean", "std"]).reset_index()
    for model in stats["model"].unique():
        table = Table(title=f"test score, end model {model} (mean ± std over seeds)")
        table.add_column("path")
        datasets = [d for d in frame["dataset"].unique() if ((stats["dataset"] == d) & (stats["model"] == model)).any()]
        for d in datasets:
            table.add_column(d, justify="right")
        table.add_column("mean", justify="right")
        for path in PATHS:
            cells, values = [], []
            for d in datasets:
                hit = stats[(stats["dataset"] == d) & (stats["model"] == model) & (stats["path"] == path)]
                if hit.empty:
                    cells.append("")
                    continue
                mean, std = float(hit["mean"].iloc[0]), float(hit["std"].fillna(0).iloc[0])
                values.append(mean)
                cells.append(f"{100 * mean:.1f} ± {100 * std:.1f}")
            table.add_row(path, *cells, f"{100 * np.mean(values):.1f}" if values else "")
        console.print(table)
    seconds = frame.groupby(["dataset", "path"])["seconds"].mean().unstack("dataset")
    console.print("seconds to prepare each training set (mean over seeds):")
    console.print(seconds.loc[[p for p in ["snorkel", "majority", "cleanlab", "thresher"] if p in seconds.index]].round(2))
    console.print("items in each training set (mean over seeds):")
    console.print(frame.groupby(["dataset", "path"])["items"].mean().unstack("dataset").round(0))
    console.print("validation rank of each recipe (mean over datasets and end models; chooses the default):")
    console.print(choose_default(frame).round(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--csv", type=Path, default=None, help="also write every row here")
    args = parser.parse_args()
    console = Console(width=200)
    console.print(" ".join(f"{p} {version(p)}" for p in ("thresher", "snorkel", "cleanlab", "scikit-learn", "torch")))
    rows: list[dict] = []
    for name in args.datasets:
        started = time.perf_counter()
        data = DATASETS[name]()
        console.print(f"{name}: {len(data.train.texts)} train ({(data.L != ABSTAIN).any(1).mean():.0%} covered, "
                      f"{data.L.shape[1]} sources), {len(data.valid.texts)} valid, {len(data.test.texts)} test")
        rows += run_dataset(data, list(range(args.seeds)), console)
        console.print(f"{name}: {time.perf_counter() - started:.0f} s")
        if args.csv:
            pd.DataFrame(rows).to_csv(args.csv, index=False)
    report(pd.DataFrame(rows), console)


if __name__ == "__main__":
    main()
