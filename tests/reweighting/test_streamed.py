"""detect's streamed path: out-of-fold probabilities from hashed TF-IDF parts and sample-fitted fold models."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from thresher.features import TfidfConfig
from tests.reweighting.test_detect import _flip


@pytest.fixture(scope="module")
def youtube():
    from benchmarks import noise_detection as noisy_benchmark

    texts, gold = noisy_benchmark.youtube()
    noisy, flipped = _flip(gold, 0.2, 2, np.random.default_rng(0))
    con = duckdb.connect()
    con.register("rows", pa.table({"position": np.arange(len(texts)), "text": texts}))
    yield con, texts, noisy, flipped
    con.close()


def _streamed(con, labels, train_rows, workers=2):
    from thresher.reweighting.detect.streamed import local_map, streamed_out_of_fold_proba
    from sklearn.linear_model import LogisticRegression

    return streamed_out_of_fold_proba(con, "SELECT text FROM rows ORDER BY position", {}, labels,
                                      features=TfidfConfig(), estimator=LogisticRegression(max_iter=2000), n_folds=3,
                                      random_state=0, train_rows=train_rows, chunk_rows=400,
                                      map_chunks=local_map(workers))


def test_with_every_row_in_the_sample_it_is_in_memory_cross_validation(youtube):
    """Parts, workers and chunk scoring change nothing: with train_rows >= N the probabilities equal
    out_of_fold_proba on the same hashed TF-IDF matrix (same StratifiedKFold folds)."""
    from thresher.reweighting.detect import out_of_fold_proba
    from thresher.reweighting.detect.streamed import hashed_tfidf
    from sklearn.linear_model import LogisticRegression

    con, texts, noisy, _ = youtube
    X = hashed_tfidf(texts, TfidfConfig())
    expected = out_of_fold_proba(LogisticRegression(max_iter=2000), X, noisy, n_folds=3, random_state=0)
    np.testing.assert_allclose(_streamed(con, noisy, train_rows=10_000), expected, atol=1e-10)
    # In this process BLAS may use several threads, in a worker one: the sums differ in the last bits.
    np.testing.assert_allclose(_streamed(con, noisy, train_rows=10_000, workers=1),
                               _streamed(con, noisy, train_rows=10_000, workers=2), atol=1e-12)


@pytest.mark.quality
def test_a_sample_still_finds_the_flipped_labels(youtube):
    """Fold models fitted on 1,000 of the 1,956 items still score every item out of fold: cleanlab's
    flags on them find the injected 20 % noise nearly as well as on all rows (measured F1 0.80 vs 0.86)."""
    from thresher.reweighting.detect.confident_learning import ConfidentLearning

    con, _, noisy, flipped = youtube

    def f1(probs):
        flags = ConfidentLearning().fit(np.empty((len(noisy), 0)), noisy, pred_probs=probs).result().is_issue
        return 2 * (flags & flipped).sum() / (flags.sum() + flipped.sum())

    full, sampled = f1(_streamed(con, noisy, train_rows=10_000)), f1(_streamed(con, noisy, train_rows=1_000))
    assert full > 0.6 and sampled > full - 0.08


def test_too_few_items_of_a_class_is_a_clear_error(youtube):
    con, _, noisy, _ = youtube
    labels = np.zeros_like(noisy)
    labels[:2] = 1
    with pytest.raises(ValueError, match="at least n_folds=3 items"):
        _streamed(con, labels, train_rows=1_000)


def test_the_local_workers_end_with_the_work(youtube):
    """Without a cluster the parts go to joblib's local processes; they are stopped when the
    probabilities are ready, not left for reuse holding their last chunks through later stages."""
    from thresher.reweighting.detect.streamed import streamed_out_of_fold_proba
    from sklearn.linear_model import LogisticRegression
    import psutil

    con, _, noisy, _ = youtube
    probs = streamed_out_of_fold_proba(con, "SELECT text FROM rows ORDER BY position", {}, noisy,
                                       features=TfidfConfig(), estimator=LogisticRegression(max_iter=2000), n_folds=3,
                                       random_state=0, train_rows=1_000, chunk_rows=400)
    assert probs.shape == (len(noisy), 2)
    workers = [c for c in psutil.Process().children(recursive=True) if any("LokyProcess" in a for a in c.cmdline())]
    assert workers == []  # the resource trackers (a few MB, for shared files) may stay


def test_the_hashed_columns_kept_are_the_frequent_ones(youtube):
    """As TfidfVectorizer keeps its vocabulary: columns in at least min_df texts, the max_features
    with the largest total counts; a column left out never outcounts one kept."""
    from thresher.reweighting.detect.streamed import hashed_counts, hashed_tfidf
    from thresher.reweighting.detect.streamed import frequent_columns

    _, texts, _, _ = youtube
    counts = hashed_counts(texts, TfidfConfig())
    config = TfidfConfig(max_features=2_000, min_df=2)
    kept = frequent_columns(counts, config)
    totals = np.asarray(counts.sum(axis=0)).ravel()
    documents = np.asarray((counts > 0).sum(axis=0)).ravel()
    assert len(kept) == 2_000 and np.all(np.diff(kept) > 0) and (documents[kept] >= 2).all()
    left_out = np.setdiff1d(np.flatnonzero(documents >= 2), kept)
    assert left_out.size and totals[left_out].max() <= totals[kept].min()
    assert hashed_tfidf(texts, config).shape == (len(texts), 2_000)
