"""Out-of-fold probabilities for more items than fit in memory, on every core (or a Dask cluster).

The in-memory path fits TF-IDF on every text and cross-validates on the whole matrix: its memory
and time grow with the rows. Here the texts are written to Parquet parts, each part's word n-grams
are counted by scikit-learn's ``HashingVectorizer`` (stateless: no vocabulary) on a worker and kept
beside it, a ``TfidfTransformer`` is fitted on a random sample of at most ``train_rows`` items, the
fold models are fitted on that sample (each on the sample rows outside its fold, so every
item is still scored by a model that never saw it) and every item is scored chunk by chunk. Folds
are the same ``StratifiedKFold`` split of all items as in memory. The chunks are Parquet parts
scored by worker processes (``map_chunks``: a Dask cluster, or a local process pool), so memory is
bounded by the sample and a chunk, not by the rows; the results do not depend on where chunks run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import cloudpickle
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from thresher.core.chunking import MapChunks
from thresher.core.memory import trim_heap
from thresher.core.progress import track
from thresher.features.tfidf import TfidfConfig
from thresher.storage.schema import release_buffers


HASH_ROWS = 10_000  # texts hashed at once on a worker


def hashed_counts(texts: Sequence[str], config: TfidfConfig, n_features: int = 2**18) -> Any:
    """Word n-gram counts hashed into ``n_features`` columns (scikit-learn's ``HashingVectorizer``: no vocabulary).

    float32: TF-IDF and the fold models keep it, halving their memory and time against float64."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=n_features, ngram_range=(1, config.ngram_max), alternate_sign=False,
                             norm=None, strip_accents="unicode", dtype=np.float32).transform(texts)


def frequent_columns(counts: Any, config: TfidfConfig) -> np.ndarray:
    """The hashed columns kept, as ``TfidfVectorizer`` keeps its vocabulary: those in at least
    ``min_df`` texts, and of them the ``max_features`` with the largest total count (sorted).

    Without the cap the fold models see every rare n-gram (2**18 buckets), which lets them fit the
    wrong labels they should expose: small-loss F1 fell 1.9 points on the noise benchmark."""
    term_counts = np.asarray(counts.sum(axis=0)).ravel()
    documents = np.bincount(counts.indices, minlength=counts.shape[1])  # CSR: one entry per (text, column)
    eligible = np.flatnonzero((documents >= config.min_df) & (term_counts > 0))
    ranked = eligible[np.argsort(-term_counts[eligible], kind="stable")]
    return np.sort(ranked[:config.max_features])


def hashed_tfidf(texts: Sequence[str], config: TfidfConfig) -> Any:
    """The streamed path's features of ``texts`` computed at once: hashed counts, the frequent
    columns, TF-IDF fitted on them (what the benchmarks compare with the in-memory TF-IDF)."""
    from sklearn.feature_extraction.text import TfidfTransformer

    counts = hashed_counts(texts, config)
    counts = counts[:, frequent_columns(counts, config)]
    return TfidfTransformer(sublinear_tf=config.sublinear_tf).fit_transform(counts)


def fold_of(labels: np.ndarray, n_folds: int, random_state: int | None) -> np.ndarray:
    """The test fold of every item: the StratifiedKFold split the in-memory path uses."""
    folds = np.empty(len(labels), dtype=np.int8)
    splits = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state).split(np.zeros(len(labels)), labels)
    for fold, (_, test) in enumerate(splits):
        folds[test] = fold
    return folds


def fit_fold(sample: str, labels: np.ndarray, keep: np.ndarray, estimator: Any) -> Any:
    """One fold's model: ``estimator`` fitted on the rows of ``keep`` of the sample matrix saved at ``sample``."""
    return clone(estimator).fit(load_csr(sample)[keep], labels[keep])


def save_csr(X: Any, path: Path) -> str:
    """Write a CSR matrix as raw ``.npy`` arrays under ``path`` (a folder), for :func:`load_csr`."""
    path.mkdir()
    for name in ("data", "indices", "indptr"):
        np.save(path / f"{name}.npy", getattr(X, name))
    np.save(path / "shape.npy", np.array(X.shape))
    return str(path)


def load_csr(path: str) -> Any:
    """The CSR matrix :func:`save_csr` wrote, memory-mapped: processes that load it share its pages."""
    import scipy.sparse as sp

    arrays = [np.load(Path(path) / f"{name}.npy", mmap_mode="r") for name in ("data", "indices", "indptr")]
    return sp.csr_matrix(tuple(arrays), shape=tuple(np.load(Path(path) / "shape.npy")), copy=False)


def hash_part(part: str, config: TfidfConfig) -> Any:
    """On a worker: hash one part's texts, keep the counts beside it, return the counts of its sample rows."""
    import scipy.sparse as sp

    table = pq.read_table(part)
    texts = table.column("text")
    # A slice at a time: HashingVectorizer holds Python lists of every n-gram index of its input.
    counts = sp.vstack([hashed_counts(texts.slice(start, HASH_ROWS).to_pylist(), config)
                        for start in range(0, len(texts), HASH_ROWS)], format="csr")
    sp.save_npz(part + ".npz", counts, compressed=False)
    sample = counts[table.column("sample").to_numpy(zero_copy_only=False)]
    del counts, table, texts
    trim_heap()
    return sample


def score_part(part: str, payload: bytes, n_classes: int) -> np.ndarray:
    """On a worker: the probabilities of one part's items, each from its own fold's model."""
    import scipy.sparse as sp

    weights, columns, models = cloudpickle.loads(payload)
    X = weights.transform(sp.load_npz(part + ".npz")[:, columns])
    folds = pq.read_table(part, columns=["fold"]).column("fold").to_numpy()
    probs = np.zeros((X.shape[0], n_classes))
    for fold, model in enumerate(models):
        rows = np.flatnonzero(folds == fold)
        if rows.size:
            probs[np.ix_(rows, model.classes_)] = model.predict_proba(X[rows])
    return probs


def local_map(workers: int) -> MapChunks:
    """``map_chunks`` on a pool of ``workers`` local processes (joblib), results in order."""
    def map_chunks(function: Callable[..., Any], arguments: Sequence[tuple]) -> list[Any]:
        if workers <= 1 or len(arguments) <= 1:
            return [function(*args) for args in arguments]
        from joblib import Parallel, delayed

        return list(Parallel(n_jobs=min(workers, len(arguments)))(delayed(function)(*args) for args in arguments))

    return map_chunks


def stop_local_workers() -> None:
    """End joblib's worker processes. They outlive the work for reuse (five idle minutes), holding what
    the last chunks left in them (0.6 GiB after 3.5M items), through the stages that follow."""
    import sys

    if "joblib" in sys.modules:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)


def streamed_out_of_fold_proba(
    con: duckdb.DuckDBPyConnection, texts_query: str, params: dict[str, Any], labels: np.ndarray, *,
    rows: np.ndarray | None = None, features: TfidfConfig, estimator: Any, n_folds: int, random_state: int | None, train_rows: int,
    chunk_rows: int = 100_000, map_chunks: MapChunks | None = None, workdir: Path | None = None,
    progress: bool = False,
) -> np.ndarray:
    """N x K out-of-fold probabilities of the items whose texts ``texts_query`` returns, in ``labels`` order.

    ``texts_query`` selects one ``text`` column, one row per label, in the same order; with ``rows``
    (a boolean mask over the query's rows) only those rows are scored, ``labels`` holding theirs. The
    parts are written under ``workdir``, which the workers must be able to read.
    """
    n, n_classes = len(labels), int(labels.max()) + 1
    counts = np.bincount(labels, minlength=n_classes)
    if (counts < n_folds).any():
        raise ValueError(f"Each class needs at least n_folds={n_folds} items for out-of-fold predictions. "
                         f"Got class counts {counts.tolist()} instead.")
    folds = fold_of(labels, n_folds, random_state)
    rng = np.random.default_rng(0 if random_state is None else random_state)
    sample = np.sort(rng.choice(n, size=min(train_rows, n), replace=False))
    in_sample = np.zeros(n, dtype=bool)
    in_sample[sample] = True
    local = map_chunks is None
    map_chunks = map_chunks or local_map(os.cpu_count() or 1)
    directory = Path(tempfile.mkdtemp(prefix="thresher-detect-", dir=workdir))
    try:
        parts, start, read = [], 0, 0
        reader = con.sql(texts_query, params=params).to_arrow_reader(chunk_rows)
        for batch in track(reader, description="Writing chunks", total=-(-n // chunk_rows), enabled=progress):
            if rows is not None:
                batch, read = batch.filter(pa.array(rows[read:read + batch.num_rows])), read + batch.num_rows
                if batch.num_rows == 0:
                    continue
            stop = start + batch.num_rows
            part = directory / f"part-{len(parts):05d}.parquet"
            pq.write_table(pa.table({"text": batch.column(0), "fold": folds[start:stop],
                                     "sample": in_sample[start:stop]}), part)
            parts.append(str(part))
            start = stop
        if start != n or (rows is not None and read != len(rows)):
            raise ValueError(f"The texts query returned {read if rows is not None else start} rows for "
                             f"{len(rows) if rows is not None else n} labels.")
        release_buffers(con)  # the workers need the memory DuckDB kept while it sorted the texts
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfTransformer

        counts = sp.vstack(map_chunks(hash_part, [(part, features) for part in parts]), format="csr")
        columns = frequent_columns(counts, features)
        counts = counts[:, columns]
        weights = TfidfTransformer(sublinear_tf=features.sublinear_tf).fit(counts)
        # In place (no second copy of the sample), then written for the workers to map.
        sample_path = save_csr(weights.transform(counts, copy=False), directory / "sample")
        del counts
        y = labels[sample]
        models = map_chunks(fit_fold, [(sample_path, y, folds[sample] != fold, estimator) for fold in range(n_folds)])
        payload = cloudpickle.dumps((weights, columns, models))
        scored = map_chunks(score_part, [(part, payload, n_classes) for part in parts])
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if local:
            stop_local_workers()
    return np.concatenate(scored)
