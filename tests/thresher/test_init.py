"""`thresher init`: a starter config and LF file read from the user's own file, that `thresher check` accepts.

(`thresher run` on the starters, end to end through Prefect: tests/flows/test_cli_init.py.)"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import YOUTUBE_EXAMPLE
from thresher.cli import app
from thresher.pipeline.check import check_config
from thresher.pipeline.config import load_config

runner = CliRunner()
PSY = YOUTUBE_EXAMPLE / "data" / "Youtube01-Psy.csv"  # 350 comments, 175 spam
AG_NEWS = ["World", "Sports", "Business", "Sci/Tech"]


def init(*args: object):
    return runner.invoke(app, ["init", *map(str, args), "--no-progress"], catch_exceptions=False)


def uncommented_labeling(config: Path) -> None:
    """What the config's comment tells a user with labels to do to label with LFs too."""
    text = config.read_text().replace("labels_from: given", "labels_from: denoised")
    block = re.search(r"^# labeling:\n(?:# .*\n)+", text, re.M)
    assert block is not None, text
    config.write_text(text.replace(block.group(0), re.sub(r"^# ", "", block.group(0), flags=re.M)))


@pytest.fixture
def news_jsonl(tmp_path: Path, shared_data: Path) -> Path:
    """AG News rows as nested JSONL with class names in a 'category' field."""
    rows = json.loads((shared_data / "cosine_agnews_devtest" / "dev_data.json").read_text())[:120]
    path = tmp_path / "data" / "news.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps({"data": {"body": r["text"], "words": r["len"]},
                                        "category": AG_NEWS[r["label"]]}) + "\n" for r in rows))
    return path


def test_a_labelled_csv_gets_a_config_that_cleans_its_labels(tmp_path: Path):
    shutil.copy(PSY, tmp_path / "comments.csv")
    result = init(tmp_path)  # the one data file in the directory
    assert result.exit_code == 0, result.output
    assert "350 rows" in result.output and "CONTENT" in result.output and f"thresher run {tmp_path}" in result.output
    config = load_config(tmp_path / "thresher.yaml")
    source = config.sources[0]
    assert (source.columns.text, source.columns.label, source.columns.id) == ("CONTENT", "CLASS", "COMMENT_ID")
    assert config.classes == ["0", "1"] and config.labels_from == "given" and config.labeling is None
    assert source.path == str(tmp_path / "comments.csv") and source.split == "train"
    assert config.export.splits == ["train"]  # written, not left to a rule the user does not see
    assert config.stage_names() == ["ingest", "detect", "export"]  # STORM is not a default: it did not pay (benchmarks)
    report = check_config(tmp_path / "thresher.yaml")
    assert report.problems == [] and report.files == {source.path: 1}
    # The commented labeling section works as the comment says, with the LF file init wrote.
    uncommented_labeling(tmp_path / "thresher.yaml")
    report = check_config(tmp_path / "thresher.yaml")
    assert report.lfs == ["names_a_class"] and report.config.labels_from == "denoised"
    # --classes names the label column's values (here the ids 0 and 1); values it cannot name are an error.
    result = init(tmp_path, "--classes", "ham,spam", "--force")
    assert result.exit_code == 0 and "ham 175, spam 175" in result.output, result.output
    assert load_config(tmp_path / "thresher.yaml").sources[0].columns.label == "CLASS"
    result = init(tmp_path, "--classes", "ham", "--force")
    assert result.exit_code == 1 and "at least two distinct names" in result.output
    result = init(tmp_path, "--classes", "ham,spam,eggs", "--force")
    assert result.exit_code == 0 and "eggs 0" in result.output


def test_nested_jsonl_with_class_names_and_a_zero_shot_lf(news_jsonl: Path, tmp_path: Path):
    result = init(tmp_path / "project", "--data", news_jsonl)
    assert result.exit_code == 0, result.output
    config_path = tmp_path / "project" / "thresher.yaml"
    config = load_config(config_path)
    assert config.sources[0].columns.text == "data.body" and config.sources[0].columns.label == "category"
    assert config.classes == ["Business", "Sci/Tech", "Sports", "World"]  # the values, sorted
    assert yaml.safe_load(config_path.read_text())["sources"][0]["path"] == "../data/news.jsonl"
    uncommented_labeling(config_path)
    report = check_config(config_path)
    assert report.problems == [] and report.lfs == ["zero_shot", "names_a_class"]
    prompt = report.config.labeling.lfs[0]
    assert prompt.answers == {"business": "Business", "sci/tech": "Sci/Tech", "sports": "Sports", "world": "World"}
    assert prompt.statements["sci/tech"] == "This text is about Sci/Tech."
    assert prompt.template.startswith("Text: {text}\n\n")
    lfs = (tmp_path / "project" / "lfs.py").read_text()
    assert "SCI_TECH = 1" in lfs and "SCI_TECH: ('sci', 'tech')" in lfs and "x.data.words" not in lfs


def test_a_split_column_exports_the_training_splits_only(tmp_path: Path):
    with PSY.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    parts = ["train", "Dev", "test", "extra"]
    pq.write_table(pa.table({"text": [r["CONTENT"] for r in rows], "label": [r["CLASS"] for r in rows],
                             "subset": [parts[i % 4] for i in range(len(rows))]}), tmp_path / "c.parquet")
    assert init(tmp_path).exit_code == 0
    text = (tmp_path / "thresher.yaml").read_text()
    assert load_config(tmp_path / "thresher.yaml").export.splits == ["extra", "train"]
    assert re.search(r'splits: \["extra", "train"\] +# held out: Dev, test', text), text


def test_an_unlabelled_parquet_file_needs_the_class_names(tmp_path: Path):
    with PSY.open(encoding="utf-8-sig") as handle:
        texts = [row["CONTENT"] for row in csv.DictReader(handle)]
    pq.write_table(pa.table({"comment": texts, "likes": list(range(len(texts)))}), tmp_path / "c.parquet")
    result = init(tmp_path)
    assert result.exit_code == 1 and "No label column found" in result.output and "--classes" in result.output
    assert not (tmp_path / "thresher.yaml").exists()
    result = init(tmp_path, "--classes", "ham, spam")
    assert result.exit_code == 0, result.output
    report = check_config(tmp_path / "thresher.yaml")
    assert report.config.classes == ["ham", "spam"] and report.config.labels_from == "denoised"
    assert report.lfs == ["zero_shot", "names_a_class"] and report.config.labeling.llm.backend == "embedded"
    assert report.config.labeling.llm.encoder == "minilm-static"  # and built by init, not by the first run
    assert report.config.sources[0].columns.text == "comment"
    assert "x.likes" in (tmp_path / "lfs.py").read_text()


def test_tsv_and_the_column_options(tmp_path: Path):
    with PSY.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    path = tmp_path / "c.tsv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["author", "body", "is_spam"])
        writer.writerows([r["AUTHOR"], r["CONTENT"], r["CLASS"]] for r in rows)
    result = init(tmp_path, "--label", "is_spam", "--classes", "ham,spam")  # names for the ids 0 and 1
    assert result.exit_code == 0, result.output
    assert "ham 175, spam 175" in result.output
    report = check_config(tmp_path / "thresher.yaml")
    assert report.problems == [] and "delimiter" not in (tmp_path / "thresher.yaml").read_text()  # .tsv: tabs
    assert report.config.sources[0].columns.text == "body" and report.config.classes == ["ham", "spam"]
    result = init(tmp_path, "--text", "author", "--no-label", "--classes", "a,b", "--force")
    assert result.exit_code == 0 and load_config(tmp_path / "thresher.yaml").sources[0].columns.text == "author"


def test_clear_errors_and_nothing_overwritten(tmp_path: Path):
    shutil.copy(PSY, tmp_path / "a.csv")
    result = init(tmp_path, "--data", tmp_path / "a.csv", "--text", "BODY")
    assert result.exit_code == 1 and "--text 'BODY' is not a column" in result.output and "CONTENT" in result.output
    assert init(tmp_path).exit_code == 0
    before = (tmp_path / "thresher.yaml").read_text()
    result = init(tmp_path, "--data", tmp_path / "a.csv", "--no-label", "--classes", "x,y")
    assert result.exit_code == 1 and "already exist" in result.output and "--force" in result.output
    assert (tmp_path / "thresher.yaml").read_text() == before
    shutil.copy(PSY, tmp_path / "b.csv")
    result = init(tmp_path, "--force")
    assert result.exit_code == 1 and "2 data files" in result.output and "a.csv, b.csv" in result.output
    result = init(tmp_path / "empty")
    assert result.exit_code == 1 and "No data file" in result.output
    for classes in ("spam", "a,A"):
        result = init(tmp_path / "x", "--data", tmp_path / "a.csv", "--no-label", "--classes", classes)
        assert result.exit_code == 1 and "at least two distinct names" in result.output
    one_class = tmp_path / "one" / "d.csv"
    one_class.parent.mkdir()
    one_class.write_text("text,label\nhello there,pos\ngood day,pos\n")
    result = init(one_class.parent)
    assert result.exit_code == 1 and "one value ('pos')" in result.output and "--no-label" in result.output
    result = init(one_class.parent, "--classes", "neg,positive")
    assert result.exit_code == 1 and "Label values ['pos'] of column 'label'" in result.output
    assert "--no-label" in result.output
    (one_class.parent / "d.csv").write_text("")
    assert "No rows could be read" in init(one_class.parent).output


def test_ids_used_only_when_unique_and_labels_only_when_few(tmp_path: Path):
    path = tmp_path / "d.csv"
    rows = [["id", "text", "label"]] + [[str(i % 250), f"text number {i} about something", str(i)] for i in range(300)]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = init(tmp_path)  # 300 distinct 'label' values: not taken for a label column
    assert result.exit_code == 1 and "No label column found" in result.output
    result = init(tmp_path, "--label", "label")
    assert result.exit_code == 1 and "300 distinct values" in result.output
    result = init(tmp_path, "--classes", "a,b")
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "thresher.yaml")
    assert config.sources[0].columns.id is None  # ids repeat from row 250 on, past the rows sampled
    assert config.sources[0].columns.label is None and config.classes == ["a", "b"]


def test_a_gold_column_is_recognised_by_its_name_and_only_scores(tmp_path: Path):
    """A column named like gold labels (``gold_topic``) is mapped as ``gold`` (never as the labels to
    clean, never shown to the starter LFs), and without a label column its values name the classes."""
    with PSY.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    pq.write_table(pa.table({"comment": [r["CONTENT"] for r in rows],
                             "gold_topic": ["spam" if r["CLASS"] == "1" else "ham" for r in rows]}), tmp_path / "c.parquet")
    result = init(tmp_path)
    assert result.exit_code == 0, result.output
    assert "gold" in result.output and "recognised by its name" in result.output
    report = check_config(tmp_path / "thresher.yaml")
    columns = report.config.sources[0].columns
    assert columns.gold == "gold_topic" and columns.label is None and report.config.labels_from == "denoised"
    assert report.config.classes == ["ham", "spam"]
    assert "gold_topic" not in (tmp_path / "lfs.py").read_text()
