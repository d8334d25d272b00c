"""The labeling stage on real WRENCH data: LabelModel quality, LF summary, stored outputs."""

from __future__ import annotations

import numpy as np
import pytest

from thresher.labeling.config import LabelingConfig
from thresher.labeling.stage import label
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest

# WRENCH (Zhang et al. 2021), Table of label-model results, youtube test accuracy of
# Snorkel's label model (MeTaL): 84.0. The issue asks for "within 3 points".
WRENCH_SNORKEL_YOUTUBE = 0.840


@pytest.fixture
def wrench_youtube(con, shared_data):
    ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
        path=str(shared_data / "wrench_youtube" / "[tv]*.json"), dataset="youtube", format="wrench")]))
    return con


@pytest.mark.quality
def test_label_model_matches_published_wrench_number(wrench_youtube):
    config = LabelingConfig(classes=["HAM", "SPAM"], source_votes=True, model={"fit_splits": ["train"]})
    summary = label(wrench_youtube, config, run_id="r1")
    test = summary.accuracy["test"]
    assert test["n"] == 250
    assert abs(test["denoised"] - WRENCH_SNORKEL_YOUTUBE) <= 0.03, test
    # Stored labels reproduce the reported accuracy.
    stored = wrench_youtube.execute(
        "SELECT avg((l.label = i.gold)::INT) FROM labels l JOIN items i USING (item_id) "
        "WHERE l.run_id = 'r1' AND i.split = 'test'").fetchall()[0][0]
    assert stored == pytest.approx(test["denoised"])
    probs = wrench_youtube.execute("SELECT probs, confidence, entropy FROM labels WHERE run_id = 'r1'").fetchall()
    assert all(abs(sum(p) - 1) < 1e-6 and c == pytest.approx(max(p)) and e >= 0 for p, c, e in probs)


def test_thresher_label_model_is_snorkels(wrench_youtube, shared_data):
    """Same votes, same settings: thresher's numbers are Snorkel 0.10's LabelModel's, to the item.

    The issue quotes 86.4 % for Snorkel's defaults. Over all 250 test items Snorkel 0.10's defaults
    (100 epochs, lr 0.01) give 83.6 % with ties to the first class, 84.0 % with ties broken per item
    (thresher's labels); Snorkel's own ``score()``,
    whose default leaves out the items the model abstains on (ties, uncovered), gives 86.6 %.
    """
    import json

    from snorkel.labeling.model import LabelModel
    from snorkel.utils import probs_to_preds

    def load(split):
        entries = json.loads((shared_data / "wrench_youtube" / f"{split}.json").read_text()).values()
        return np.array([e["weak_labels"] for e in entries]), np.array([e["label"] for e in entries])

    (L_train, _), (L_test, y_test) = load("train"), load("test")
    reference = LabelModel(cardinality=2, verbose=False)
    reference.fit(L_train, seed=0, progress_bar=False)
    probs = reference.predict_proba(L_test)
    summary = label(wrench_youtube, LabelingConfig(classes=["HAM", "SPAM"], source_votes=True,
                                                   model={"fit_splits": ["train"]}), run_id="ref")
    stored = wrench_youtube.sql("SELECT l.label, l.probs FROM labels l JOIN items i USING (item_id) WHERE l.run_id = 'ref' "
                                "AND i.split = 'test' ORDER BY i.source_line").fetchnumpy()
    np.testing.assert_allclose(np.stack(stored["probs"]), probs, atol=1e-9)
    decided = probs_to_preds(probs, tie_break_policy="abstain") != -1
    assert (stored["label"][decided] == probs.argmax(axis=1)[decided]).all()  # Snorkel's label wherever it decides
    tied = np.abs(probs - probs.max(axis=1, keepdims=True)) < 1e-5
    assert tied[np.arange(len(probs)), stored["label"]].all()  # a tie goes to one of the tied classes
    assert summary.accuracy["test"]["denoised"] == pytest.approx(float((stored["label"] == y_test).mean()))
    assert summary.accuracy["test"]["denoised"] == pytest.approx(0.840)
    # Snorkel's own LabelModel.score() (tie_break_policy="abstain": ties and uncovered items left out)
    # is the issue's >= 86 % measure: 0.866 on the 232 of 250 test items the model decides.
    snorkel_score = reference.score(L_test, y_test, tie_break_policy="abstain")["accuracy"]
    assert summary.accuracy["test"]["denoised_decided"] == pytest.approx(snorkel_score)
    assert summary.accuracy["test"]["denoised_decided"] >= 0.86 and summary.accuracy["test"]["decided"] < 1
    # Over all items 86 % is out of reach with Snorkel's decided hits: 18 test items have no vote at
    # all, so any label model gives them one and the same label; the better one gets 10 of them.
    uncovered = (L_test == -1).all(axis=1)
    best_constant = np.bincount(y_test[uncovered], minlength=2).max()
    assert uncovered.sum() == 18 and best_constant == 10
    assert (round(snorkel_score * 232) + best_constant) / 250 < 0.86
    learned = [r[0] for r in wrench_youtube.execute(
        "SELECT learned_accuracy FROM lf_summary WHERE run_id = 'ref' ORDER BY lf").fetchall()]
    np.testing.assert_allclose(learned, np.clip(reference.get_weights(), 0, 1))


def test_model_selection_on_the_gold_dev_split(wrench_youtube):
    config = LabelingConfig(classes=["HAM", "SPAM"], source_votes=True,
                            model={"fit_splits": ["train"], "select_on": "valid"})
    summary = label(wrench_youtube, config, run_id="sel")
    # 1 configured + 8 grid candidates (one equals the configured one) + majority vote + both Dawid-Skene models.
    assert len(summary.selection) == 11
    best = max(c["dev_accuracy"] for c in summary.selection)
    chosen = next(c for c in summary.selection if c["dev_accuracy"] == best)
    assert {k: v for k, v in chosen.items() if k != "dev_accuracy"} == summary.model
    assert summary.accuracy["valid"]["denoised"] == pytest.approx(best)


def test_majority_vote_model_and_multiclass_shape(wrench_youtube):
    config = LabelingConfig(classes=["HAM", "SPAM"], source_votes=True, model={"model": "majority"})
    summary = label(wrench_youtube, config, run_id="mv")
    assert 0.70 <= summary.accuracy["test"]["denoised"] <= 0.90
    assert summary.accuracy["test"]["denoised"] == summary.accuracy["test"]["majority_vote"]
    learned = wrench_youtube.execute("SELECT count(learned_accuracy) FROM lf_summary WHERE run_id = 'mv'").fetchall()
    assert learned == [(0,)]  # majority vote learns no LF accuracies


def test_an_lf_that_never_votes_has_no_learned_accuracy_and_polarity_reads_as_class_names(wrench_youtube):
    from thresher.cli import _show_lfs, out

    config = LabelingConfig(classes=["HAM", "SPAM"], source_votes=True,
                            lfs=[{"kind": "keyword", "name": "never", "label": "SPAM", "terms": ["qqzxqqzx"]}])
    summary = label(wrench_youtube, config, run_id="never")
    rows = dict(wrench_youtube.execute("SELECT lf, learned_accuracy FROM lf_summary WHERE run_id = 'never'").fetchall())
    assert rows["never"] is None  # not Snorkel's 1.0 for an LF without a single vote
    assert sum(v is not None for v in rows.values()) == len(rows) - 1
    assert summary.as_dict()["classes"] == ["HAM", "SPAM"]
    with out.capture() as captured:
        _show_lfs(summary.lf_records(), summary.classes)
    table = captured.get()
    assert "SPAM" in table and "HAM" in table and "[1]" not in table


def test_lf_summary_is_snorkels(wrench_youtube, shared_data):
    import json

    config = LabelingConfig(classes=["HAM", "SPAM"], source_votes=True)
    summary = label(wrench_youtube, config, run_id="r2")
    rows = wrench_youtube.execute(
        "SELECT lf, coverage, \"overlaps\", conflicts, correct, incorrect FROM lf_summary WHERE run_id = 'r2' ORDER BY lf"
    ).fetchall()
    assert len(rows) == 10
    entries = [e for name in ("test", "train", "valid")
               for e in json.loads((shared_data / "wrench_youtube" / f"{name}.json").read_text()).values()]
    L = np.array([e["weak_labels"] for e in entries])
    y = np.array([e["label"] for e in entries])
    from snorkel.labeling import LFAnalysis

    expected = LFAnalysis(L).lf_summary(Y=y)
    for j, (name, coverage, overlaps, conflicts, correct, incorrect) in enumerate(rows):
        assert name == f"lf_{j}"
        assert coverage == pytest.approx(expected["Coverage"].iloc[j])
        assert overlaps == pytest.approx(expected["Overlaps"].iloc[j])
        assert conflicts == pytest.approx(expected["Conflicts"].iloc[j])
        assert (correct, incorrect) == (expected["Correct"].iloc[j], expected["Incorrect"].iloc[j])
    assert summary.coverage == pytest.approx((L != -1).any(axis=1).mean())


def test_rerunning_a_run_replaces_its_rows(wrench_youtube):
    config = LabelingConfig(classes=["HAM", "SPAM"], source_votes=True)
    label(wrench_youtube, config, run_id="same")
    label(wrench_youtube, config, run_id="same")
    assert wrench_youtube.execute("SELECT count(*) FROM labels WHERE run_id = 'same'").fetchall()[0][0] == 1956


def test_labels_written_in_batches_equal_one_batch(wrench_youtube, monkeypatch):
    """Batches of 500 (1,956 items: three full, one short) store exactly the rows of one batch."""
    import thresher.labeling.stage as stage

    config = LabelingConfig(classes=["HAM", "SPAM"], source_votes=True)
    query = "SELECT item_id, label, probs, confidence, entropy, covered FROM labels WHERE run_id = ? ORDER BY item_id"
    whole_summary = label(wrench_youtube, config, run_id="whole")
    monkeypatch.setattr(stage, "LABEL_ROWS", 500)
    batched_summary = label(wrench_youtube, config, run_id="batched")
    whole, batched = (wrench_youtube.execute(query, [run]).fetchall() for run in ("whole", "batched"))
    assert len(whole) == 1956 and batched == whole
    # The LF summary and the accuracy are tallied over the batches: equal to those of one batch.
    lfs = "SELECT * EXCLUDE (run_id) FROM lf_summary WHERE run_id = ? ORDER BY lf"
    whole_lfs, batched_lfs = (wrench_youtube.execute(lfs, [run]).fetchall() for run in ("whole", "batched"))
    assert len(whole_lfs) == 10
    for row, other in zip(whole_lfs, batched_lfs):
        assert row[:2] == other[:2] and row[4:] == other[4:]  # lf, polarity; counts, accuracies
        assert row[2:4] == pytest.approx(other[2:4])  # coverage, overlaps: fractions summed by batch
    assert batched_summary.accuracy.keys() == whole_summary.accuracy.keys() == {"train", "valid", "test"}
    for split, numbers in whole_summary.accuracy.items():
        assert batched_summary.accuracy[split] == pytest.approx(numbers)
    assert (batched_summary.coverage, batched_summary.n_votes) == pytest.approx((whole_summary.coverage, whole_summary.n_votes))


def test_fit_on_a_sample_of_the_fit_splits_is_that_sample(wrench_youtube, shared_data):
    """fit_rows below the train split's 1,586 items: the model is fitted on exactly the rows
    ``fit_sample`` draws from the train items in item_id order (drawn in SQL, not from an L of all items)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from thresher.labeling.config import DenoiseConfig
    from thresher.labeling.matrix import vote_matrix
    from thresher.labeling.model import fit_denoiser, fit_sample

    config = LabelingConfig(classes=["HAM", "SPAM"], source_votes=True,
                            model={"fit_splits": ["train"], "fit_rows": 1000, "seed": 3})
    label(wrench_youtube, config, run_id="sampled")
    ids = [row[0] for row in wrench_youtube.execute("SELECT item_id FROM items WHERE split = 'train' ORDER BY item_id").fetchall()]
    votes = wrench_youtube.sql("SELECT item_id, lf, vote FROM source_votes").to_arrow_table()
    L_train = vote_matrix(votes.filter(pc.is_in(votes.column("item_id"), pa.array(ids))), ids, [f"lf_{j}" for j in range(10)])
    sample = fit_sample(len(L_train), 1000, 3)
    model = fit_denoiser(L_train[sample], cardinality=2, config=DenoiseConfig(fit_splits=["train"], fit_rows=1000, seed=3))
    stored = wrench_youtube.execute("SELECT probs FROM labels l JOIN items i USING (item_id) "
                                    "WHERE run_id = 'sampled' AND i.split = 'train' ORDER BY item_id").fetchall()
    assert np.allclose(np.array([p for (p,) in stored]), model.predict_proba(L_train))


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="needs LFs"):
        LabelingConfig(classes=["A", "B"])
    with pytest.raises(ValueError, match="neither a class id nor one of the classes"):
        LabelingConfig(classes=["A", "B"], lfs=[{"kind": "keyword", "name": "k", "label": "C", "terms": ["x"]}])
    with pytest.raises(ValueError, match="must be unique"):
        LabelingConfig(classes=["A", "B"], lfs=[
            {"kind": "keyword", "name": "k", "label": "A", "terms": ["x"]},
            {"kind": "regex", "name": "k", "label": "B", "pattern": "y"},
        ]).build_lfs()


def test_too_few_lfs_for_the_label_model(wrench_youtube):
    config = LabelingConfig(classes=["HAM", "SPAM"], lfs=[{"kind": "keyword", "name": "k", "label": "HAM", "terms": ["song"]}])
    with pytest.raises(ValueError, match="at least 3 LFs"):
        label(wrench_youtube, config, run_id="x")
    summary = label(wrench_youtube, config.model_copy(update={"model": config.model.model_copy(update={"model": "majority"})}), run_id="x")
    assert summary.n_lfs == 1


def test_fit_splits_that_match_nothing(wrench_youtube):
    config = LabelingConfig(classes=["HAM", "SPAM"], source_votes=True, model={"fit_splits": ["nope"]})
    with pytest.raises(ValueError, match="Splits present"):
        label(wrench_youtube, config, run_id="x")
