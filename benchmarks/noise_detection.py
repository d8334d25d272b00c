"""Benchmark: noise detectors on real data with injected and real crowd label noise.

For each setting the labelled data is split 80/20 (stratified on gold). The detectors see the
training part with noisy labels; their flags are scored against "noisy label != gold" (precision,
recall, F1, AUROC of the scores). A logistic regression is then trained on all noisy training rows,
on the rows each detector keeps, and on the gold labels (acc clean), and scored on the test part; the
``oracle_drop`` row keeps exactly the rows whose label is right, which bounds what dropping can recover. With
``--downstream lr-cv`` its C is chosen by 3-fold cross-validation on the labels it is trained with
(never the test part), as a user tuning the final model would; the default is sklearn's C = 1. With
``--downstream mlp`` it is a one-hidden-layer network (256 units, Adam, 200 epochs, no early stopping):
like the deep models of the papers and the training worker, it fits the noisy labels it is given. With
``--kept-weights prior`` the kept rows are weighted so each label keeps its share of the training
set, as cleanlab's ``CleanLearning.fit`` does after pruning.

Text datasets get TF-IDF features (or MiniLM with --encoder minilm, or its static distillation with
--encoder minilm-static, or with --encoder hashed-tfidf the features detect streams with above
``stream_above`` items, computed in memory here since every dataset is below ``train_rows``); music genre uses its 124
numeric features, standardised. Injected noise: symmetric 20 % / 40 %, pair-flip 20 % (k -> k+1),
instance-dependent 20 % (flip to the most likely wrong class, with probability proportional to a
clean model's out-of-fold probability of it). Real noise: music genre (the first MTurk worker's label
per song) and RTE (the first worker's label per sentence pair). AG News is subsampled to --agnews rows.

    .venv/bin/python -m benchmarks.noise_detection --seeds 0
"""

from __future__ import annotations

import argparse
import csv
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from thresher.reweighting.detect import DetectorResult, out_of_fold_proba
from thresher.features import SentenceEncoder, StaticEncoder, TfidfConfig, tfidf_features
from thresher.reweighting.detect.stage import DetectConfig, run_detectors
from thresher.reweighting.detect.streamed import hashed_tfidf
from benchmarks.shared import SHARED

ROOT = Path(__file__).resolve().parents[1]
DETECTORS = ["confident_learning", "small_loss", "linear_separation", "hybrid", "ensemble"]
REPORTED = [*DETECTORS, "oracle_drop"]  # oracle_drop drops exactly the wrong labels (an upper bound, not a detector)


def youtube() -> tuple[list[str], np.ndarray]:
    rows = {}
    for path in sorted((ROOT / "examples" / "youtube" / "data").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for r in csv.DictReader(handle):
                rows[r["COMMENT_ID"]] = (r["CONTENT"], int(r["CLASS"]))
    texts, labels = zip(*(rows[k] for k in sorted(rows)))
    return list(texts), np.array(labels)


def sms(split: str = "train") -> tuple[list[str], np.ndarray]:
    """The ImplyLoss SMS split (train 4,502 / valid 500 / test 500); 1 = spam."""
    with (SHARED / "sms_spam_implyloss" / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["v2"] for r in rows], np.array([1 if r["v1"] == "spam" else 0 for r in rows])


def agnews(limit: int) -> tuple[list[str], np.ndarray]:
    rows = json.loads((SHARED / "cosine_agnews_devtest" / "dev_data.json").read_text())
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))[:limit]]
    return [r["text"] for r in rows], np.array([r["label"] for r in rows])


def trec(split: str = "train") -> tuple[list[str], np.ndarray]:
    """The ImplyLoss TREC split, 6 classes."""
    classes = ["DESC", "ENTY", "HUM", "ABBR", "LOC", "NUM"]
    texts, labels = [], []
    for line in (SHARED / "trec_implyloss" / f"{split}.txt").read_text(encoding="latin-1").splitlines():
        label, _, text = line.partition(":")
        texts.append(text)
        labels.append(classes.index(label))
    return texts, np.array(labels)


def music() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numeric features, gold labels, and the first worker's label per song."""
    with (SHARED / "music_genre_mturk_rodrigues" / "music_genre_gold.csv").open(newline="") as handle:
        gold_rows = list(csv.DictReader(handle))
    with (SHARED / "music_genre_mturk_rodrigues" / "mturk_answers.csv").open(newline="") as handle:
        answers = list(csv.DictReader(handle))
    classes = sorted({r["class"] for r in gold_rows})
    first: dict[str, str] = {}
    for a in answers:
        first.setdefault(a["Input.song"], a["Answer.pred_label"])
    rows = [r for r in gold_rows if r["id"] in first and first[r["id"]] in classes]
    X = np.array([[float(r[f"feature{i}"]) for i in range(124)] for r in rows])
    gold = np.array([classes.index(r["class"]) for r in rows])
    noisy = np.array([classes.index(first[r["id"]]) for r in rows])
    return StandardScaler().fit_transform(X), gold, noisy


def rte() -> tuple[list[str], np.ndarray, np.ndarray]:
    with (SHARED / "snow2008_rte_crowd" / "rte1.tsv").open(encoding="utf-8", newline="") as handle:
        pairs = {r["id"]: (f"{r['text']} [SEP] {r['hypothesis']}", 1 if r["value"] == "TRUE" else 0)
                 for r in csv.DictReader(handle, delimiter="\t")}
    first: dict[str, int] = {}
    with (SHARED / "snow2008_rte_crowd" / "rte.standardized.tsv").open(encoding="utf-8", newline="") as handle:
        for r in csv.DictReader(handle, delimiter="\t"):
            first.setdefault(r["orig_id"], int(r["response"]))
    ids = sorted(i for i in pairs if i in first)
    return [pairs[i][0] for i in ids], np.array([pairs[i][1] for i in ids]), np.array([first[i] for i in ids])


def inject(kind: str, gold: np.ndarray, X, rng: np.random.Generator) -> np.ndarray:
    """Noisy labels of the given kind (see the module docstring)."""
    K = int(gold.max()) + 1
    noisy = gold.copy()
    if kind.startswith("sym"):
        rate = int(kind[3:]) / 100
        flip = rng.random(len(gold)) < rate
        noisy[flip] = (gold[flip] + rng.integers(1, K, flip.sum())) % K
    elif kind == "pair20":
        flip = rng.random(len(gold)) < 0.2
        noisy[flip] = (gold[flip] + 1) % K
    elif kind == "inst20":
        probs = out_of_fold_proba(LogisticRegression(max_iter=2000), X, gold, random_state=0)
        probs[np.arange(len(gold)), gold] = 0
        target = probs.argmax(axis=1)
        weight = probs.max(axis=1)
        flip = rng.random(len(gold)) < np.clip(0.2 * weight / weight.mean(), 0, 1)
        noisy[flip] = target[flip]
    else:
        raise ValueError(kind)
    return noisy


CS = [0.1, 1.0, 10.0, 100.0]  # --downstream lr-cv: the C grid


def prior_weights(y: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Per kept row, (rows of its label) / (kept rows of its label): the kept rows keep the labels'
    apparent priors, as cleanlab's CleanLearning.fit does with 1 / noise_matrix[k][k]."""
    weights = np.zeros(len(y))
    for k in np.unique(y[keep]):
        weights[keep & (y == k)] = (y == k).sum() / (keep & (y == k)).sum()
    return weights[keep]


def test_accuracy(X_train, y_train, X_test, y_test, keep=None, downstream: str = "lr",
                  kept_weights: str = "none", seed: int = 0) -> float:
    weights = None if keep is None or kept_weights == "none" else prior_weights(y_train, keep)
    keep = np.ones(len(y_train), dtype=bool) if keep is None else keep
    if downstream == "mlp":
        model = MLPClassifier(hidden_layer_sizes=(256,), max_iter=200, random_state=seed)
        with warnings.catch_warnings():  # 200 epochs is the budget, not a failure to converge
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train[keep], y_train[keep], sample_weight=weights)
        return float((model.predict(X_test) == y_test).mean())
    if downstream == "lr-cv":
        model = LogisticRegressionCV(Cs=CS, cv=3, max_iter=2000, scoring="accuracy", l1_ratios=(0.0,),
                                     use_legacy_attributes=False)
    else:
        model = LogisticRegression(max_iter=2000)
    model.fit(X_train[keep], y_train[keep], sample_weight=weights)
    return float((model.predict(X_test) == y_test).mean())


def evaluate(name: str, noise: str, X, gold: np.ndarray, noisy: np.ndarray, seed: int,
             lsa_mode: str = "global", downstream: str = "lr", kept_weights: str = "none",
             small_loss_threshold: float = 0.5, hybrid_rounds: int = 4) -> list[dict]:
    index = np.arange(len(gold))
    train, test = train_test_split(index, test_size=0.2, stratify=gold, random_state=seed)
    X_train, X_test = X[train], X[test]
    y_noisy, y_gold = noisy[train], gold[train]
    wrong = y_noisy != y_gold
    settings = {"confident_learning": {}, "small_loss": {"threshold": small_loss_threshold},
                "linear_separation": {"mode": lsa_mode, "small_loss_threshold": small_loss_threshold},
                "hybrid": {"rounds": hybrid_rounds, "threshold": small_loss_threshold, "lsa_mode": lsa_mode},
                "ensemble": {}}
    config = DetectConfig(detectors={name: settings[name] for name in DETECTORS}, random_state=seed)
    estimator = LogisticRegression(max_iter=2000)
    started = time.perf_counter()
    pred_probs = out_of_fold_proba(estimator, X_train, y_noisy, random_state=seed)
    results = run_detectors(X_train, y_noisy, pred_probs, config, estimator)
    seconds = time.perf_counter() - started
    base = {"dataset": name, "noise": noise, "seed": seed, "noise_rate": float(wrong.mean()),
            "acc_noisy": test_accuracy(X_train, y_noisy, X_test, gold[test], downstream=downstream, seed=seed),
            "acc_clean": test_accuracy(X_train, y_gold, X_test, gold[test], downstream=downstream, seed=seed),
            "seconds_all_detectors": seconds}
    rows = []
    # oracle_drop flags exactly the wrong labels: what dropping rows can recover at best.
    oracle = DetectorResult("oracle_drop", (~wrong).astype(float), wrong)
    for detector, result in [*results.items(), ("oracle_drop", oracle)]:
        flagged = result.is_issue
        tp = int((flagged & wrong).sum())
        keep = ~flagged
        rows.append({**base, "detector": detector,
                     "precision": tp / flagged.sum() if flagged.any() else float("nan"),
                     "recall": tp / wrong.sum() if wrong.any() else float("nan"),
                     "f1": 2 * tp / (flagged.sum() + wrong.sum()) if (flagged.sum() + wrong.sum()) else float("nan"),
                     "auroc": float(roc_auc_score(wrong, 1 - result.scores)) if 0 < wrong.sum() < len(wrong) else float("nan"),
                     "acc_kept": test_accuracy(X_train, y_noisy, X_test, gold[test], keep, downstream, kept_weights, seed)
                     if len(np.unique(y_noisy[keep])) == len(np.unique(y_noisy)) else float("nan")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--agnews", type=int, default=4000)
    parser.add_argument("--encoder", choices=["tfidf", "hashed-tfidf", "minilm", "minilm-static"], default="tfidf",
                        help="hashed-tfidf: the features of detect's streamed path (hashed 1-2-gram counts, idf on all rows)")
    parser.add_argument("--lsa-mode", choices=["global", "per_class"], default="global",
                        help="linear separation (and the hybrid): one hyperplane, or one per label")
    parser.add_argument("--downstream", choices=["lr", "lr-cv", "mlp"], default="lr",
                        help="the classifier trained on noisy / kept / clean rows: logistic regression at C = 1, "
                             "or with C by 3-fold CV, or a one-hidden-layer network that fits its labels")
    parser.add_argument("--kept-weights", choices=["none", "prior"], default="none",
                        help="prior: weight the kept rows so each label keeps its share (cleanlab's CleanLearning)")
    parser.add_argument("--small-loss-threshold", type=float, default=0.5,
                        help="flag p_clean below this (0.5: DivideMix; 0.05: the LSA paper's p_noisy > 0.95)")
    parser.add_argument("--hybrid-rounds", type=int, default=4, help="rounds of the hybrid (LSA on even rounds)")
    parser.add_argument("--noises", nargs="+", default=["sym20", "sym40", "pair20", "inst20"],
                        help="injected noise kinds to run")
    parser.add_argument("--datasets", nargs="+", default=["youtube", "sms", "agnews", "trec", "music_genre", "rte"])
    parser.add_argument("--out", type=Path, default=None, help="also write every row as JSON lines")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables as markdown")
    args = parser.parse_args()
    console = Console(width=200)
    static = StaticEncoder()
    encoded: dict[str, object] = {}  # features depend on the texts only, not on the seed

    def featurise(texts: list[str]):
        key = "\n\x00".join(texts)
        if key not in encoded:
            encoded[key] = encode(texts)
        return encoded[key]

    def encode(texts: list[str]):
        if args.encoder == "minilm":
            return SentenceEncoder().encode(texts)
        if args.encoder == "minilm-static":
            return static.encode(texts)
        if args.encoder == "hashed-tfidf":
            return hashed_tfidf(texts, TfidfConfig(max_features=20_000))
        return tfidf_features(texts, TfidfConfig(max_features=20_000))

    text_sets: dict[str, Callable[[], tuple[list[str], np.ndarray]]] = {
        "youtube": youtube, "sms": sms, "agnews": lambda: agnews(args.agnews), "trec": trec}
    options = {"lsa_mode": args.lsa_mode, "downstream": args.downstream, "kept_weights": args.kept_weights,
               "small_loss_threshold": args.small_loss_threshold, "hybrid_rounds": args.hybrid_rounds}
    rows: list[dict] = []
    for seed in args.seeds:
        for name, load in text_sets.items():
            if name not in args.datasets:
                continue
            texts, gold = load()
            X = featurise(texts)
            for noise in args.noises:
                noisy = inject(noise, gold, X, np.random.default_rng(seed))
                rows += evaluate(name, noise, X, gold, noisy, seed, **options)
                console.print(f"done {name} {noise} seed {seed}")
        if "music_genre" in args.datasets:
            X, gold, noisy = music()
            rows += evaluate("music_genre", "crowd", X, gold, noisy, seed, **options)
        if "rte" in args.datasets:
            texts, gold, noisy = rte()
            rows += evaluate("rte", "crowd", featurise(texts), gold, noisy, seed, **options)
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))

    table = Table(title=f"Noise detection ({args.encoder} features, lsa_mode {args.lsa_mode}, downstream "
                        f"{args.downstream}, kept weights {args.kept_weights}, small-loss threshold {args.small_loss_threshold}; "
                        f"mean over seeds {args.seeds})")
    for column in ("dataset", "noise", "rate", "detector", "P", "R", "F1", "AUROC", "acc noisy", "acc kept", "acc clean"):
        table.add_column(column)
    keys = sorted({(r["dataset"], r["noise"], r["detector"]) for r in rows},
                  key=lambda k: (k[0], k[1], REPORTED.index(k[2])))
    mean = lambda values: float(np.nanmean(values)) if values else float("nan")  # noqa: E731
    for key in keys:
        group = [r for r in rows if (r["dataset"], r["noise"], r["detector"]) == key]
        table.add_row(key[0], key[1], f"{mean([r['noise_rate'] for r in group]):.2f}", key[2],
                      *(f"{mean([r[m] for r in group]):.3f}" for m in ("precision", "recall", "f1", "auroc", "acc_noisy", "acc_kept", "acc_clean")))
    console.print(table)
    markdown = ["| dataset | noise | rate | detector | P | R | F1 | AUROC | acc noisy | acc kept | acc clean |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in keys:
        group = [r for r in rows if (r["dataset"], r["noise"], r["detector"]) == key]
        values = [f"{mean([r[m] for r in group]):.3f}" for m in ("precision", "recall", "f1", "auroc", "acc_noisy", "acc_kept", "acc_clean")]
        markdown.append(f"| {key[0]} | {key[1]} | {mean([r['noise_rate'] for r in group]):.2f} | {key[2]} | " + " | ".join(values) + " |")

    summary = Table(title="Per detector, over all settings")
    for column in ("detector", "mean F1", "mean AUROC", "gap closed at sym20 (kept vs noisy, of clean - noisy)",
                   "pooled gap closed at sym20"):
        summary.add_column(column)
    for detector in REPORTED:
        mine = [r for r in rows if r["detector"] == detector]
        sym20 = [r for r in mine if r["noise"] == "sym20"]
        gaps = [(r["acc_kept"] - r["acc_noisy"]) / (r["acc_clean"] - r["acc_noisy"]) for r in sym20
                if r["acc_clean"] - r["acc_noisy"] > 0.005]
        # Pooled: sum(kept - noisy) / sum(clean - noisy) over every sym20 run; small gaps cannot inflate it.
        gap_total = sum(r["acc_clean"] - r["acc_noisy"] for r in sym20)
        pooled = sum(r["acc_kept"] - r["acc_noisy"] for r in sym20) / gap_total if sym20 and gap_total > 0 else float("nan")
        summary.add_row(detector, f"{mean([r['f1'] for r in mine]):.3f}", f"{mean([r['auroc'] for r in mine]):.3f}",
                        f"{mean(gaps):.2f}" if gaps else "n/a (gap < 0.5 points)", f"{pooled:.2f}")
        markdown.append(f"<!-- summary --> {detector}: mean F1 {mean([r['f1'] for r in mine]):.3f}, mean AUROC "
                        f"{mean([r['auroc'] for r in mine]):.3f}, sym20 gap closed {mean(gaps):.2f}, pooled {pooled:.2f}"
                        if gaps else "")
    console.print(summary)
    if args.markdown:
        args.markdown.write_text("\n".join(line for line in markdown if line) + "\n")


if __name__ == "__main__":
    main()
