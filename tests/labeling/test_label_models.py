"""Label models beside Snorkel's: Dawid-Skene (crowd-kit) on real crowd labels, ``model: auto``
without gold, and the tie policy of every model."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from thresher.labeling.auto import overlapping_lfs
from thresher.labeling.config import LabelingConfig
from thresher.labeling.label_models import LABEL_MODELS
from thresher.labeling.lf.base import ABSTAIN
from thresher.labeling.ties import hard_labels
from thresher.labeling.stage import label
from thresher.reweighting.items import labelled_items
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest

from tests.labeling.test_rules import TREC_CLASSES, TREC_LONG, ingest_trec


def _rte_wide(shared_data: Path, dst: Path) -> list[str]:
    """The RTE-1 crowd labels as one row per sentence pair with a column per worker (-1: no label),
    as a user with per-annotator columns would have them; returns the worker columns."""
    folder = shared_data / "snow2008_rte_crowd"
    with (folder / "rte1.tsv").open(encoding="utf-8", newline="") as handle:
        pairs = {r["id"]: (f"{r['text']} [SEP] {r['hypothesis']}", r["value"]) for r in csv.DictReader(handle, delimiter="\t")}
    answers: dict[str, dict[str, str]] = {}
    with (folder / "rte.standardized.tsv").open(encoding="utf-8", newline="") as handle:
        for r in csv.DictReader(handle, delimiter="\t"):
            answers.setdefault(r["orig_id"], {})[r["!amt_worker_ids"]] = r["response"]
    workers = sorted({w for votes in answers.values() for w in votes})
    with dst.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "gold", *workers])
        for item in sorted(answers, key=int):
            writer.writerow([item, pairs[item][0], pairs[item][1], *(answers[item].get(w, "-1") for w in workers)])
    return workers


@pytest.fixture
def rte(con, shared_data, tmp_path):
    workers = _rte_wide(shared_data, tmp_path / "rte.csv")
    summary = ingest(con, IngestConfig(classes=["no", "yes"], sources=[SourceConfig(
        path=str(tmp_path / "rte.csv"), dataset="rte", split="all", columns={"id": "id", "text": "text", "gold": "gold"},
        label_map={"FALSE": "no", "TRUE": "yes"}, votes={"columns": workers, "abstain": -1})]))
    assert summary.new_items == 800
    return con


def _run(con, model: dict, run_id: str):
    return label(con, LabelingConfig(classes=["no", "yes"], source_votes=True, model=model), run_id=run_id)


@pytest.mark.quality
def test_dawid_skene_on_real_crowd_labels_beats_the_label_model(rte):
    """RTE-1, 164 workers, 10 labels per pair (Snow et al. 2008): Dawid-Skene is the crowd model.
    Measured: Dawid-Skene 0.927, majority vote 0.897 (ties per item), Snorkel's LabelModel 0.766."""
    ds = _run(rte, {"model": "dawid_skene"}, "ds").accuracy["all"]
    lm = _run(rte, {"model": "label_model"}, "lm").accuracy["all"]
    assert ds["denoised"] >= 0.92, ds
    assert ds["denoised"] > ds["majority_vote"] > lm["denoised"] + 0.05, (ds, lm)
    learned = rte.sql("SELECT learned_accuracy FROM lf_summary WHERE run_id = 'ds'").fetchnumpy()["learned_accuracy"]
    assert len(learned) == 164 and 0 < learned.min() and learned.max() <= 1


@pytest.mark.slow
@pytest.mark.quality
def test_auto_chooses_without_gold_and_says_why(rte):
    """RTE's crowd: the two Dawid-Skene models lead, the LabelModel (0.766 there) is many standard errors
    behind; full and one-coin Dawid-Skene are too close to rank (0.927 / 0.925), so the fallback rule
    names one-coin and the note says so."""
    summary = _run(rte, {"model": "auto"}, "auto")
    assert summary.model["model"] == "one_coin"
    scored = {entry["model"]: entry for entry in summary.selection}
    assert set(scored) == {"majority", "label_model", "dawid_skene", "one_coin"}
    assert scored["dawid_skene"]["heldout_agreement"] == max(e["heldout_agreement"] for e in scored.values())
    assert scored["label_model"]["standard_errors_behind"] > 5
    assert 0 < scored["one_coin"]["standard_errors_behind"] < 2 and "cannot tell" in scored["one_coin"]["note"]
    assert [entry["model"] for entry in summary.selection if entry.get("chosen")] == ["one_coin"]
    assert summary.accuracy["all"]["denoised"] >= 0.92
    # The criterion saw no gold label: the same votes without gold give the same choice.
    rte.execute("UPDATE items SET gold = NULL")
    assert _run(rte, {"model": "auto"}, "auto2").model == summary.model


@pytest.mark.quality
def test_auto_leaves_out_dawid_skene_for_one_class_lfs(con, shared_data):
    """WRENCH YouTube's LFs each vote one class: Dawid-Skene would return the class prior."""
    ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
        path=str(shared_data / "wrench_youtube" / "[tv]*.json"), dataset="youtube", format="wrench")]))
    summary = label(con, LabelingConfig(classes=["HAM", "SPAM"], source_votes=True,
                                        model={"model": "auto", "fit_splits": ["train"]}), run_id="auto")
    excluded = {entry["model"]: entry.get("excluded") for entry in summary.selection}
    assert "one class" in excluded["dawid_skene"]
    assert summary.model["model"] in ("label_model", "majority")
    assert summary.accuracy["test"]["denoised"] >= 0.82


def test_hard_labels_break_ties_per_item_and_never_favour_the_first_class():
    probs = np.tile([[1 / 3, 1 / 3, 1 / 3]], (3000, 1))
    probs[:1000] = [0.2, 0.4, 0.4]
    hashes = np.random.default_rng(0).integers(0, 2**63, size=3000, dtype=np.uint64)
    label, tied = hard_labels(probs, hashes)
    assert tied.all()
    assert set(label[:1000]) == {1, 2}  # only the tied classes
    assert np.bincount(label[1000:], minlength=3).min() > 550  # about a third each
    again, _ = hard_labels(probs[::-1], hashes[::-1])
    assert (again[::-1] == label).all()  # the item's hash decides, not its position
    clear, tied = hard_labels(np.array([[0.1, 0.9]]), hashes[:1])
    assert clear.tolist() == [1] and not tied.any()


@pytest.mark.parametrize("tie_break", ["abstain", "random"])
def test_tie_policy_decides_what_the_later_stages_read(rte, tie_break):
    summary = _run(rte, {"model": "majority", "tie_break": tie_break}, "mv")
    counts = dict(rte.sql("SELECT decided, count(*) FROM labels WHERE run_id = 'mv' GROUP BY 1").fetchall())
    ties = rte.sql("SELECT count(*) FROM labels WHERE run_id = 'mv' AND list_max(probs) - list_min(probs) < 1e-5").fetchall()[0][0]
    assert summary.tied == ties > 20  # 10 workers per pair: 5-5 splits
    assert summary.tie_break == tie_break
    assert counts.get(False, 0) == (ties if tie_break == "abstain" else 0)
    read = labelled_items(rte, "denoised", "mv", text=False).num_rows
    assert read == 800 - counts.get(False, 0)
    tied_labels = rte.sql("SELECT label, count(*) FROM labels WHERE run_id = 'mv' AND list_max(probs) - list_min(probs) < 1e-5 "
                          "GROUP BY 1").fetchall()
    assert len(tied_labels) == 2  # ties go to both classes, not all to the first


@pytest.mark.quality
def test_auto_is_not_fooled_by_overlapping_rules(con, shared_data, tmp_path):
    """TREC's 68 rules overlap (several fire on the same question words). Plain held-out agreement
    preferred the LabelModel (0.619 vs 0.595), which follows the overlapping cluster, though majority
    vote is 3.2 points more accurate; hiding each rule's overlapping rules with it reverses that."""
    folder = ingest_trec(con, shared_data, tmp_path)
    config = LabelingConfig(classes=TREC_CLASSES, model={"model": "auto"},
                            lfs=[{"kind": "rule_file", "path": str(folder / "rule.txt"), "label_map": TREC_LONG}])
    summary = label(con, config, run_id="auto")
    scored = {entry["model"]: entry.get("heldout_agreement") for entry in summary.selection}
    assert summary.model["model"] == "majority", scored
    assert scored["majority"] > scored["label_model"]
    lm = label(con, config.model_copy(update={"model": config.model.model_copy(update={"model": "label_model"})}),
               run_id="lm")
    for split in ("train", "valid", "test"):
        assert summary.accuracy[split]["denoised"] >= lm.accuracy[split]["denoised"] - 0.005, (split, summary.accuracy, lm.accuracy)


def test_overlapping_lfs_pairs_rules_not_annotators():
    rng = np.random.default_rng(0)
    fires = rng.random(1000) < 0.3
    L = np.full((1000, 5), ABSTAIN)
    L[fires, 0] = 1                       # a rule
    L[fires & (rng.random(1000) < 0.9), 1] = 0  # fires on 90 % of rule 0's items, other class
    L[rng.random(1000) < 0.3, 2] = 1      # an independent rule
    L[fires, 3] = rng.integers(0, 2, fires.sum())  # annotators on the same items: never partners
    L[fires, 4] = rng.integers(0, 2, fires.sum())
    partners = overlapping_lfs(L)
    assert partners[0].tolist() == [1] and partners[1].tolist() == [0]
    assert partners[2].tolist() == [] and partners[3].tolist() == [] and partners[4].tolist() == []


def test_auto_says_when_it_cannot_tell_and_which_rule_chose(con, tmp_path):
    """Two annotators who always agree: every candidate predicts the hidden vote perfectly, so the
    criterion cannot separate them; auto says so and chooses by its stated rule (annotators: one-coin
    Dawid-Skene)."""
    from thresher.labeling.auto import FALLBACK_RULE

    rng = np.random.default_rng(0)
    answers = rng.integers(0, 2, 60)
    path = tmp_path / "twins.csv"
    path.write_text("id,text,w1,w2\n" + "".join(f"{i},item {i},{a},{a}\n" for i, a in enumerate(answers)))
    ingest(con, IngestConfig(classes=["no", "yes"], sources=[SourceConfig(
        path=str(path), dataset="twins", columns={"id": "id", "text": "text"}, votes={"columns": ["w1", "w2"]})]))
    summary = _run(con, {"model": "auto"}, "auto")
    chosen = [entry for entry in summary.selection if entry.get("chosen")]
    assert summary.model["model"] == "one_coin" and len(chosen) == 1
    assert "cannot tell the candidates apart" in chosen[0]["note"] and FALLBACK_RULE in chosen[0]["note"]
    scores = [entry["heldout_agreement"] for entry in summary.selection if "heldout_agreement" in entry]
    assert len(scores) == 3 and max(scores) == min(scores)


def _long_crowd(shared_data: Path, name: str):
    """(item, worker, answer) rows of a shared crowd set in long form, as a DataFrame."""
    import pandas as pd

    if name == "rte":
        frame = pd.read_csv(shared_data / "snow2008_rte_crowd" / "rte.standardized.tsv", sep="\t")
        return frame.rename(columns={"orig_id": "item", "!amt_worker_ids": "worker", "response": "answer"})
    if name == "music":
        frame = pd.read_csv(shared_data / "music_genre_mturk_rodrigues" / "mturk_answers.csv")
        return frame.rename(columns={"Input.song": "item", "WorkerID": "worker", "Answer.pred_label": "answer"})
    folder = {"web": "zhou2012_web_search_relevance_crowd", "quiz": "li2017_quiz_crowd"}[name]
    return pd.read_csv(shared_data / folder / "answers.csv")


@pytest.mark.quality
@pytest.mark.parametrize("name", ["rte", "music", "web", "quiz"])
@pytest.mark.parametrize("one_coin", [False, True])
def test_dawid_skene_labels_are_crowd_kits(shared_data, name, one_coin):
    """thresher's Dawid-Skene (and one-coin Dawid-Skene) give crowd-kit's ``DawidSkene().fit(...).labels_``
    (``OneCoinDawidSkene``'s) on every item of each shared crowd set (the posteriors are crowd-kit's; a
    tie goes to the first class in both here)."""
    from crowdkit.aggregation import DawidSkene, OneCoinDawidSkene

    from thresher.labeling.crowd import fit_dawid_skene

    frame = _long_crowd(shared_data, name)
    items, workers = sorted(frame["item"].unique()), sorted(frame["worker"].unique())
    classes = sorted(frame["answer"].unique())
    L = np.full((len(items), len(workers)), ABSTAIN)
    L[np.searchsorted(items, frame["item"]), np.searchsorted(workers, frame["worker"])] = \
        np.searchsorted(classes, frame["answer"])
    predict, _ = fit_dawid_skene(L, cardinality=len(classes), n_iter=100, one_coin=one_coin)
    ours = predict(L).argmax(axis=1)
    theirs = (OneCoinDawidSkene if one_coin else DawidSkene)(n_iter=100).fit(frame.rename(columns={"item": "task", "answer": "label"})).labels_
    expected = np.searchsorted(classes, theirs.reindex(items).to_numpy())
    assert (ours != expected).sum() == 0, f"{name}: {(ours != expected).sum()} of {len(items)} items differ"


@pytest.mark.quality
def test_snorkel_tie_policy_gives_snorkels_majority_vote_labels(con, shared_data):
    """``tie_break: snorkel``: the labels of Snorkel's ``MajorityLabelVoter().predict(L)`` (its
    ``random`` tie policy) for L in item_id order, ties included (WRENCH YouTube: 1,956 comments)."""
    from snorkel.labeling.model import MajorityLabelVoter

    ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
        path=str(shared_data / "wrench_youtube" / "*.json"), dataset="youtube", format="wrench")]))
    summary = label(con, LabelingConfig(classes=["HAM", "SPAM"], source_votes=True,
                                        model={"model": "majority", "tie_break": "snorkel"}), run_id="mv")
    rows = con.execute("SELECT item_id, label FROM labels WHERE run_id = 'mv' ORDER BY item_id").fetchall()
    votes = con.execute("SELECT item_id, lf, vote FROM source_votes").fetchall()
    items = [item for item, _ in rows]
    lfs = sorted({lf for _, lf, _ in votes})
    L = np.full((len(items), len(lfs)), ABSTAIN)
    position = {item: i for i, item in enumerate(items)}
    for item, lf, vote in votes:
        L[position[item], lfs.index(lf)] = vote
    expected = MajorityLabelVoter(cardinality=2).predict(L, tie_break_policy="random")
    assert summary.tied > 100  # many ties, so the policy matters
    assert [label for _, label in rows] == expected.tolist()


def _crowd_matrix(shared_data: Path, name: str, subset: str = "") -> np.ndarray:
    frame = _long_crowd(shared_data, name)
    frame = frame[frame["item"].astype(str).str.startswith(subset)]
    items, workers = sorted(frame["item"].unique()), sorted(frame["worker"].unique())
    L = np.full((len(items), len(workers)), ABSTAIN)
    L[np.searchsorted(items, frame["item"]), np.searchsorted(workers, frame["worker"])] = \
        np.searchsorted(sorted(frame["answer"].unique()), frame["answer"])
    return L


@pytest.mark.parametrize("name", sorted(LABEL_MODELS))
def test_every_label_model_meets_the_contract(shared_data, name):
    """On real crowd votes (RTE, 164 workers) with a few all-abstain rows added: probabilities sum to 1,
    the same seed gives the same output, items without votes get the model's prior, misuse is a clear
    error."""
    from thresher.labeling.label_models import LABEL_MODELS

    L = np.vstack([_crowd_matrix(shared_data, "rte"), np.full((3, 164), ABSTAIN)])
    kind = LABEL_MODELS[name]
    with pytest.raises(ValueError, match="not fitted"):
        kind(2).predict_proba(L)
    first = kind(2, seed=1).fit(L).predict_proba(L)
    again = kind(2, seed=1).fit(L).predict_proba(L)
    assert first.shape == (len(L), 2) and np.allclose(first.sum(axis=1), 1.0) and (first >= 0).all()
    assert np.array_equal(first, again)
    model = kind(2, seed=1).fit(L)
    assert np.allclose(first[-3:], model.prior_) and np.isclose(model.prior_.sum(), 1.0)
    with pytest.raises(ValueError, match="164 LF columns"):
        model.predict_proba(L[:, :10])
    if kind.min_lfs > 2:
        with pytest.raises(ValueError, match=f"needs at least {kind.min_lfs} LFs"):
            kind(2).fit(L[:, :2])


@pytest.mark.quality
def test_auto_trusts_a_lead_past_two_standard_errors_and_says_when_there_is_none(shared_data):
    """Music genre (44 workers, 700 songs): one-coin Dawid-Skene leads every other model by more than
    two standard errors and is chosen without a note (0.793; majority vote 0.704). The Pokemon quiz
    (55 workers, 20 questions): no lead is larger than its noise, so auto says it cannot tell and the
    fallback rule chooses one-coin Dawid-Skene (1.000; the LabelModel 0.900, majority vote 0.650)."""
    from thresher.labeling.auto import Z
    from thresher.labeling.config import DenoiseConfig
    from thresher.labeling.model import fit_denoiser

    fitted = fit_denoiser(_crowd_matrix(shared_data, "music"), cardinality=10, config=DenoiseConfig(model="auto"))
    chosen = [entry for entry in fitted.selection if entry.get("chosen")]
    assert fitted.params["model"] == "one_coin" and "note" not in chosen[0]
    assert all(entry["standard_errors_behind"] > Z for entry in fitted.selection if not entry.get("chosen"))

    L = _crowd_matrix(shared_data, "quiz", "POKEMON_")
    fitted = fit_denoiser(L, cardinality=int(L.max()) + 1, config=DenoiseConfig(model="auto"))
    chosen = [entry for entry in fitted.selection if entry.get("chosen")]
    assert fitted.params["model"] == "one_coin" and "cannot tell the candidates apart" in chosen[0]["note"]
    assert all(entry["standard_errors_behind"] <= Z for entry in fitted.selection if not entry.get("chosen"))


@pytest.mark.parametrize("name", sorted(LABEL_MODELS))
def test_every_registered_label_model_passes_the_public_contract_check(name):
    """The check users run on their own label models (thresher.testing) passes on every registered one."""
    from thresher.testing import check_label_model

    check_label_model(LABEL_MODELS[name])
    check_label_model(LABEL_MODELS[name], cardinality=2)


def test_the_public_check_names_what_a_bad_label_model_breaks():
    from thresher.testing import ContractError, check_label_model

    class Unnormalised:
        def __init__(self, cardinality):
            self.k = cardinality

        def fit(self, L):
            return self

        def predict_proba(self, L):
            return np.stack([(L == k).sum(axis=1) for k in range(self.k)], axis=1).astype(float)

    class Shifted(Unnormalised):  # reads vote k as class k + 1
        def predict_proba(self, L):
            counts = super().predict_proba(L) + 1.0
            return np.roll(counts / counts.sum(axis=1, keepdims=True), 1, axis=1)

    class Wide(Unnormalised):
        def predict_proba(self, L):
            return np.full((len(L), self.k + 1), 1 / (self.k + 1))

    with pytest.raises(ContractError, match="must sum to 1"):
        check_label_model(Unnormalised)
    with pytest.raises(ContractError, match="voters all agree"):
        check_label_model(Shifted)
    with pytest.raises(ContractError, match=r"shape \(\d+, 3\) \(items x classes\); got \(\d+, 4\)"):
        check_label_model(Wide)
    with pytest.raises(ContractError, match=r"needs fit\(\) and predict_proba\(\)"):
        check_label_model("numpy:pi")
