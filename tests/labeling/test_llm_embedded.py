"""The embedded backend end to end: several prompted LFs on real YouTube and SMS data, offline.

Thresholds sit well below the measured numbers (benchmarks/prompted_lfs.py) so they do not flake;
the point is the shape of Smith et al.'s table: prompted LFs + LabelModel beat one zero-shot prompt.
"""

from __future__ import annotations

import pytest
import yaml

from benchmarks.prompted_lfs import PROMPTS, prompts
from thresher.labeling.config import LabelingConfig
from thresher.labeling.stage import label
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest

pytestmark = [pytest.mark.slow, pytest.mark.quality]  # accuracy thresholds on real datasets


def zero_shot(task: str) -> dict:
    return yaml.safe_load((PROMPTS / "zero_shot.yaml").read_text())[task]


def test_youtube_prompted_lfs_beat_one_zero_shot_prompt_and_mix_with_keyword_lfs(con, shared_data):
    classes = ["HAM", "SPAM"]
    ingest(con, IngestConfig(classes=classes, sources=[SourceConfig(
        path=str(shared_data / "wrench_youtube" / "[tv][ae]*.json"), dataset="youtube", format="wrench")]))
    embedded = {"backend": "embedded"}
    single = label(con, LabelingConfig(classes=classes, lfs=[zero_shot("youtube")], llm={**embedded, "margin": 0},
                                       model={"model": "majority"}), run_id="zero")
    several = label(con, LabelingConfig(classes=classes, lfs=prompts("youtube"), llm=embedded), run_id="prompted")
    mixed = label(con, LabelingConfig(classes=classes, lfs=prompts("youtube"), source_votes=True, llm=embedded),
                  run_id="mixed")
    zero, prompted = single.accuracy["test"]["denoised"], several.accuracy["test"]["denoised"]
    assert zero < 0.6 and prompted >= 0.72 and prompted - zero >= 0.15, (zero, prompted)
    assert mixed.accuracy["test"]["denoised"] >= 0.78 and mixed.n_lfs == 16
    distinct = con.execute("SELECT count(DISTINCT text) FROM items").fetchall()[0][0]
    assert several.llm["sent"] == several.llm["prompts"] == 6 * distinct  # 6 LFs, one prompt per distinct text
    assert mixed.llm["sent"] == 0  # all cached
    # Every LF answered every item (no failures); below the margin the backend gives no answer.
    assert all(c["failed"] == c["not_sent"] == c["unmatched"] == 0 for c in several.llm["lfs"].values())
    assert sum(c["no_answer"] for c in several.llm["lfs"].values()) > 0
    precise = con.execute("SELECT lf, emp_accuracy FROM lf_summary WHERE run_id = 'prompted' AND lf IN "
                          "('p_subscribe', 'p_website', 'p_own_music')").fetchall()
    assert all(accuracy >= 0.8 for _, accuracy in precise), precise


def test_sms_prompted_lfs_beat_one_zero_shot_prompt(con, shared_data):
    classes = ["ham", "spam"]
    ingest(con, IngestConfig(classes=classes, sources=[SourceConfig(
        path=str(shared_data / "sms_spam_implyloss" / f"{split}.csv"), dataset="sms", split=split,
        columns={"text": "v2", "gold": "v1"}) for split in ("valid", "test")]))
    embedded = {"backend": "embedded"}
    single = label(con, LabelingConfig(classes=classes, lfs=[zero_shot("sms")], llm={**embedded, "margin": 0},
                                       model={"model": "majority"}), run_id="zero")
    several = label(con, LabelingConfig(classes=classes, lfs=prompts("sms"), llm=embedded), run_id="prompted")
    zero, prompted = single.accuracy["test"]["denoised_f1"], several.accuracy["test"]["denoised_f1"]
    assert zero < 0.35 and prompted >= 0.35 and prompted - zero >= 0.15, (zero, prompted)
