"""Features: MiniLM embeddings from the packaged model, computed once and cached in DuckDB."""

from __future__ import annotations

import numpy as np
import pytest

from reweighting.features import SentenceEncoder, cached_embeddings
from reweighting.stage import DetectConfig, detect
from storage.ingest import IngestConfig, SourceConfig, ingest
from tests.conftest import YOUTUBE_EXAMPLE


class CountingEncoder(SentenceEncoder):
    """The real encoder, counting the texts it is asked to encode."""

    encoded = 0

    def encode(self, texts, *, progress=False):
        CountingEncoder.encoded += len(texts)
        return super().encode(texts, progress=progress)


@pytest.fixture(scope="module")
def encoder():
    model = CountingEncoder()
    model.setup()
    return model


def test_packaged_minilm_embeds_offline(encoder):
    vectors = encoder.encode(["check out my channel", "great song", "check out my channel!"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    cosine = vectors @ vectors.T / np.outer(np.linalg.norm(vectors, axis=1), np.linalg.norm(vectors, axis=1))
    assert cosine[0, 2] > 0.9 > cosine[0, 1]  # near-duplicates are close, unrelated texts are not
    np.testing.assert_allclose(encoder.encode(["great song"]), vectors[1:2], atol=1e-5)


@pytest.mark.slow
def test_embeddings_are_computed_once_per_item(con, encoder):
    ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
        path=str(YOUTUBE_EXAMPLE / "data" / "Youtube01-*.csv"), dataset="youtube",
        columns={"text": "CONTENT", "label": "CLASS", "gold": "CLASS", "id": "COMMENT_ID"})]))
    item_ids, texts = map(list, zip(*con.execute("SELECT item_id, text FROM items ORDER BY item_id").fetchall()))
    first, n_first = cached_embeddings(con, encoder, item_ids[:200], texts[:200])
    before = CountingEncoder.encoded
    both, n_both = cached_embeddings(con, encoder, item_ids, texts)
    assert (n_first, n_both) == (200, len(item_ids) - 200)
    assert CountingEncoder.encoded - before == len(item_ids) - 200
    np.testing.assert_array_equal(both[:200], first)
    assert cached_embeddings(con, encoder, item_ids, texts)[1] == 0
    assert con.execute("SELECT count(*) FROM embeddings WHERE encoder = 'minilm'").fetchall()[0][0] == len(item_ids)
    summary = detect(con, DetectConfig(labels_from="given", encoder="minilm"), run_id="e", label_run=None)
    assert summary.n_checked == len(item_ids)
