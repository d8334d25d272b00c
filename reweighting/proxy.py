"""What curation changed, on the user's own data: a quick proxy model trained on the raw labels and on
the curated export, both scored on the gold labels of a held-out split.

The proxy is logistic regression on TF-IDF of the texts (word 1-2-grams), the model of
``benchmarks/curation_value.py``: cheap, and on the shared datasets it ranks curation recipes as the
other end models do. Without gold labels in a held-out split nothing is scored, and the result says so.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow.dataset as ds


WORSE_BY = 0.01  # a curated proxy model this much less accurate than the raw one gets a warning


def soft_rows(X: Any, targets: np.ndarray, weights: np.ndarray | None = None) -> tuple[Any, np.ndarray, np.ndarray]:
    """Rows, labels and sample weights that make a scikit-learn classifier fit ``targets``: hard labels
    (N,) as they are; class probabilities (N x K) as one row per class weighted by its probability (the
    expected cross-entropy), times ``weights``."""
    import scipy.sparse as sp

    n = X.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights has shape {w.shape}; expected ({n},), one per row of X.")
    targets = np.asarray(targets)
    if targets.ndim == 1:
        return X, targets, w
    if targets.shape[0] != n:
        raise ValueError(f"targets has {targets.shape[0]} rows; X has {n}.")
    K = targets.shape[1]
    stack = sp.vstack if sp.issparse(X) else np.vstack
    return stack([X] * K), np.repeat(np.arange(K), n), (targets * w[:, None]).T.ravel()


def fit_proxy(X: Any, targets: np.ndarray, weights: np.ndarray | None = None):
    """Logistic regression (C 1, newton-cg) fitted on hard or soft ``targets``."""
    from sklearn.linear_model import LogisticRegression

    rows, labels, sample_weight = soft_rows(X, targets, weights)
    return LogisticRegression(C=1.0, solver="newton-cg", max_iter=1000).fit(rows, labels, sample_weight=sample_weight)


def _sample(n: int, rows: int, seed: int) -> np.ndarray:
    return np.arange(n) if n <= rows else np.sort(np.random.default_rng(seed).choice(n, rows, replace=False))


def proxy_check(con: duckdb.DuckDBPyConnection, *, out_dir: str, held_out: list[str], labels_from: str,
                label_run: str | None, rows: int = 50_000, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """Accuracy and macro F1 on the gold items of the ``held_out`` splits of the proxy model trained on the
    raw labels of the training items (the given labels, or the label model's hard labels of the decided
    items) and on the export in ``out_dir`` (its target column and weights); at most ``rows`` of each."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import f1_score

    from thresher.core.progress import track
    from thresher.storage.loader import read_manifest

    gold = con.execute("SELECT text, gold FROM items WHERE gold IS NOT NULL AND list_contains(?, split) "
                       "ORDER BY item_id", [held_out]).fetchall()
    if not gold:
        return {"scored": False, "note": "no gold labels in a held-out split: the proxy model has nothing to be scored "
                                         "on (add gold labels to a test split to see what curation changed)"}
    if labels_from == "given":
        raw = con.execute("SELECT text, label FROM items WHERE label IS NOT NULL AND (split IS NULL OR NOT "
                          "list_contains(?, split)) ORDER BY item_id", [held_out]).fetchall()
    else:
        raw = con.execute("SELECT i.text, l.label FROM labels l JOIN items i USING (item_id) WHERE l.run_id = ? "
                          "AND l.covered AND coalesce(l.decided, TRUE) AND (i.split IS NULL OR NOT list_contains(?, i.split)) "
                          "ORDER BY i.item_id", [label_run, held_out]).fetchall()
    manifest = read_manifest(out_dir)
    column = manifest.get("target", {}).get("column", "label")
    shards = ds.dataset(out_dir, format="parquet").to_table(columns=["text", column, "weight"])
    raw = [raw[i] for i in _sample(len(raw), rows, seed)]
    kept = _sample(shards.num_rows, rows, seed)
    curated_texts = shards.column("text").take(kept).to_pylist()
    targets = shards.column(column).take(kept)
    curated_targets = np.stack(targets.to_numpy(zero_copy_only=False)) if column == "probs" else targets.to_numpy()
    curated_weights = shards.column("weight").take(kept).to_numpy(zero_copy_only=False).astype(float)
    eval_rows = [gold[i] for i in _sample(len(gold), rows, seed)]
    texts = [t for t, _ in eval_rows]
    y = np.array([g for _, g in eval_rows])
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=100_000).fit(
        [t for t, _ in raw] + curated_texts)
    X_eval = tfidf.transform(texts)
    out: dict[str, Any] = {"scored": True, "model": "logistic regression on TF-IDF", "gold_items": len(y),
                           "splits": held_out}
    sides = [("raw", [t for t, _ in raw], np.array([label for _, label in raw]), None),
             ("curated", curated_texts, curated_targets, curated_weights)]
    for name, side_texts, target, weights in track(sides, description="Proxy model: raw labels, then the export",
                                                   enabled=progress):
        X = tfidf.transform(side_texts)
        if X.shape[0] == 0 or len(np.unique(target if target.ndim == 1 else target.argmax(1))) < 2:
            out[name] = {"rows": X.shape[0], "note": "fewer than two classes: no model"}
            continue
        predicted = fit_proxy(X, target, weights).predict(X_eval)
        out[name] = {"rows": int(X.shape[0]), "accuracy": round(float((predicted == y).mean()), 4),
                     "macro_f1": round(float(f1_score(y, predicted, average="macro")), 4)}
    if "accuracy" in out["raw"] and "accuracy" in out["curated"]:
        out["change"] = {k: round(out["curated"][k] - out["raw"][k], 4) for k in ("accuracy", "macro_f1")}
        if out["change"]["accuracy"] < -WORSE_BY:
            out["warning"] = (f"the export trained a worse proxy model than the raw labels (accuracy "
                              f"{out['raw']['accuracy']:.3f} -> {out['curated']['accuracy']:.3f})"
                              + ("; soft targets from a label model fitted on few items can be badly calibrated: "
                                 "try export.target: hard" if column == "probs" else ""))
    return out
