"""Per-item vote counts (a crowd aggregated before it reached thresher): kept as counts, never as
made-up workers, and labelled by majority vote over them; bad counts are rejects with their reason."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from thresher.labeling.config import LabelingConfig
from thresher.labeling.stage import label
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
from tests.labeling.test_label_models import _rte_wide


def _rte_counts(shared_data: Path, tmp_path: Path) -> Path:
    """RTE-1 as a site that publishes only tallies would: per pair, how many workers said no / yes."""
    workers = _rte_wide(shared_data, tmp_path / "wide.csv")
    path = tmp_path / "counts.csv"
    with (tmp_path / "wide.csv").open(encoding="utf-8", newline="") as src, path.open("w", encoding="utf-8", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["id", "text", "gold", "n_no", "n_yes"])
        for row in csv.DictReader(src):
            votes = [row[w] for w in workers]
            writer.writerow([row["id"], row["text"], row["gold"], votes.count("0"), votes.count("1")])
    return path


def test_counts_give_the_labels_majority_vote_gives_the_workers_votes(con, shared_data, tmp_path):
    """The same 800 RTE pairs, once with the 164 workers' votes and once as no/yes tallies: the counts'
    majority vote labels every pair as majority vote over the workers does (ties too, per item)."""
    counts = _rte_counts(shared_data, tmp_path)
    gold_map = {"FALSE": "no", "TRUE": "yes"}
    summary = ingest(con, IngestConfig(classes=["no", "yes"], sources=[SourceConfig(
        path=str(counts), dataset="rte", split="all", columns={"id": "id", "text": "text", "gold": "gold"}, label_map=gold_map,
        vote_counts={"columns": {"no": "n_no", "yes": "n_yes"}})]))
    assert summary.new_items == 800 and not summary.rejected
    assert con.execute("SELECT count(*), sum(list_sum(counts)) FROM vote_counts").fetchall()[0] == (800, 8000)
    assert con.execute("SELECT count(*) FROM source_votes").fetchall()[0][0] == 0  # no made-up workers
    counted = label(con, LabelingConfig(classes=["no", "yes"], vote_counts=True, model={"model": "majority"}),
                    run_id="counts")
    assert counted.n_lfs == 0 and counted.counted_votes == 8000 and counted.coverage == 1.0
    by_counts = dict(con.execute("SELECT item_id, label FROM labels WHERE run_id = 'counts' AND decided").fetchall())

    workers = _rte_wide(shared_data, tmp_path / "wide.csv")
    con.execute("DELETE FROM vote_counts; DELETE FROM items")
    ingest(con, IngestConfig(classes=["no", "yes"], sources=[SourceConfig(
        path=str(tmp_path / "wide.csv"), dataset="rte", split="all", columns={"id": "id", "text": "text", "gold": "gold"},
        label_map=gold_map, votes={"columns": workers, "abstain": -1})]))
    voted = label(con, LabelingConfig(classes=["no", "yes"], source_votes=True, model={"model": "majority"}), run_id="mv")
    by_votes = dict(con.execute("SELECT item_id, label FROM labels WHERE run_id = 'mv' AND decided").fetchall())
    assert by_counts == by_votes and len(by_counts) > 700  # 5-5 ties are left undecided in both
    assert counted.accuracy["all"]["denoised"] == pytest.approx(voted.accuracy["all"]["denoised"])
    assert counted.tied == voted.tied > 20


def test_bad_counts_are_rejects_and_misuse_is_a_clear_error(con, tmp_path):
    path = tmp_path / "tally.csv"
    path.write_text("id,text,pos,neg\n"
                    "a,good,3,1\n"      # 2
                    "b,bad,,2\n"        # 3: empty is 0
                    "c,odd,-1,2\n"      # 4: negative
                    "d,odd,2.5,1\n"     # 5: not whole
                    "e,odd,many,1\n"    # 6: not a number
                    "f,fine,4.0,0\n")   # 7: a whole float is fine
    source = SourceConfig(path=str(path), dataset="t", columns={"id": "id", "text": "text"},
                          vote_counts={"columns": {"POS": "pos", "NEG": "neg"}})
    summary = ingest(con, IngestConfig(classes=["NEG", "POS"], sources=[source]))
    assert summary.new_items == 3 and dict(summary.rejected) == {"wrong_type": 3}
    details = [r[0] for r in con.execute("SELECT detail FROM rejects ORDER BY line").fetchall()]
    assert all("vote count column 'pos'" in d for d in details) and ">= 0" in details[0]
    assert con.execute("SELECT item_id, counts FROM vote_counts ORDER BY 1").fetchall() == [
        ("t:a", [1, 3]), ("t:b", [2, 0]), ("t:f", [0, 4])]
    assert ingest(con, IngestConfig(classes=["NEG", "POS"], sources=[source])).already_present == 3  # idempotent
    path.write_text("id,text,pos,neg\na,good,5,1\n")  # the same item with other counts
    assert dict(ingest(con, IngestConfig(classes=["NEG", "POS"], sources=[source])).rejected) == {"conflicting_id": 1}
    with pytest.raises(ValueError, match="names the class 'MAYBE'"):
        ingest(con, IngestConfig(classes=["NEG", "POS"], sources=[SourceConfig(
            path=str(path), dataset="t", columns={"id": "id", "text": "text"}, vote_counts={"columns": {"MAYBE": "pos"}})]))
    with pytest.raises(ValueError, match="only majority vote can use them"):
        LabelingConfig(classes=["NEG", "POS"], vote_counts=True)
    run = label(con, LabelingConfig(classes=["NEG", "POS"], vote_counts=True, model={"model": "majority"}), run_id="r")
    probs = dict(con.execute("SELECT item_id, probs FROM labels WHERE run_id = 'r'").fetchall())
    assert np.allclose(probs["t:a"], [0.25, 0.75]) and np.allclose(probs["t:f"], [0.0, 1.0]) and run.coverage == 1.0
