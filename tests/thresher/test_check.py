"""`thresher check`: every config mistake found up front, all at once, without heavy imports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO, YOUTUBE_EXAMPLE
from thresher.pipeline.check import check_config
from thresher.cli import app
from thresher.pipeline.config import ConfigError

runner = CliRunner()


@pytest.fixture
def example(tmp_path: Path) -> Path:
    shutil.copytree(YOUTUBE_EXAMPLE, tmp_path / "youtube")
    return tmp_path / "youtube" / "thresher.yaml"


def edit(config: Path, old: str, new: str) -> None:
    text = config.read_text()
    assert old in text, old
    config.write_text(text.replace(old, new, 1))


def test_the_bundled_example_checks_clean(example: Path):
    report = check_config(example)
    assert report.files == {str(example.parent / "data/Youtube0[1-4]-*.csv"): 4,
                            str(example.parent / "data/Youtube05-*.csv"): 1}
    assert len(report.lfs) == 14 and "short_comment" in report.lfs
    result = runner.invoke(app, ["check", str(example)])
    assert result.exit_code == 0 and "ok:" in result.output and "14 LFs" in result.output, result.output


def test_every_mistake_is_listed_at_once(example: Path):
    edit(example, "columns: {text: CONTENT, gold: CLASS, id: COMMENT_ID}", "columns: {text: CONTENTS, gold: KLASS, id: COMMENT_ID}")
    edit(example, r"pattern: 'https?://|www\.|\.com\b'", "pattern: 'https?://(|www'")
    edit(example, "name: please, label: SPAM", "name: song, label: SPAM")
    edit(example, "function: lfs.py:shouting", "function: lfs.py:shoutin")
    edit(example, "- {kind: python, function: lfs.py:short_comment}",
         "- {kind: python, function: lfs.py:short_comment}\n"
         "    - {kind: sql, name: bad_sql, label: SPAM, where: \"lenght(text) > 3\"}\n"
         "    - {kind: python, function: missing.py:f}")
    with pytest.raises(ConfigError) as caught:
        check_config(example)
    message = str(caught.value)
    assert "7 problem(s)" in message, message
    assert ("the text column 'CONTENTS' is not in 4 of the 4 files sampled; the columns of 'Youtube01-Psy.csv' are: "
            "AUTHOR, CLASS, COMMENT_ID, CONTENT, DATE") in message
    assert "the gold column 'KLASS'" in message
    assert "LF 'link'" in message and "not a valid regex" in message
    assert "'bad_sql'" in message and "lenght" in message
    assert "These appear more than once: ['song']" in message
    assert "defines no 'shoutin'; it defines: " in message and "'shouting'" in message
    assert "missing.py' does not exist" in message


def test_a_source_that_matches_nothing_or_has_no_such_column(tmp_path: Path):
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"id": "a", "body": {"text": "hello"}, "y": "HAM"}) + "\n")
    config = tmp_path / "thresher.yaml"
    config.write_text(f"""
classes: [HAM, SPAM]
labels_from: given
sources:
  - {{path: "{data}", dataset: d, columns: {{text: body.text, label: y, id: id}}}}
  - {{path: "{tmp_path}/nothing-*.csv", dataset: e}}
""")
    with pytest.raises(ConfigError) as caught:
        check_config(config)
    assert "1 problem(s)" in str(caught.value) and "matches no file" in str(caught.value)
    config.write_text(config.read_text().replace(f'  - {{path: "{tmp_path}/nothing-*.csv", dataset: e}}\n', ""))
    assert check_config(config).files == {str(data): 1}  # nested 'body.text' is found
    config.write_text(config.read_text().replace("text: body.text", "text: body.txt"))
    with pytest.raises(ConfigError, match=r"the text column 'body.txt' is not in 'rows.jsonl'; the columns of 'rows.jsonl' are: "
                                          r"body, body.text, id, y"):
        check_config(config)


def test_check_runs_before_any_heavy_import(example: Path):
    """The check (and so every command's start) imports neither torch nor scikit-learn nor Prefect."""
    code = ("import sys; from thresher.pipeline.check import check_config; check_config(sys.argv[1]); "
            "print([m for m in ('torch', 'sklearn', 'prefect', 'cleanlab', 'snorkel') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code, str(example)], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_bad_config_fails_a_run_with_one_line_before_any_stage(example: Path):
    edit(example, "function: lfs.py:shouting", "function: lfs.py:shoutin")
    done = subprocess.run([str(Path(sys.executable).parent / "thresher"), "run", str(example)], capture_output=True,
                          text=True, cwd=REPO, timeout=300)
    assert done.returncode == 1
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "shoutin" in done.stderr and not (example.parent / "thresher.duckdb").exists()  # no stage ran


def test_check_reads_json_arrays_and_names_a_missing_vote_column(tmp_path: Path):
    from thresher.pipeline.check import check_config

    data = tmp_path / "rows.json"
    data.write_text(json.dumps([{"text": "hi there", "w1": "HAM", "w2": -1}, {"text": "win now", "w1": "SPAM"}]))
    config = tmp_path / "thresher.yaml"
    config.write_text(f"""
classes: [HAM, SPAM]
sources:
  - {{path: "{data}", dataset: d, votes: {{columns: [w1, w2]}}}}
labeling: {{source_votes: true, model: {{model: majority}}}}
""")
    assert check_config(config).files == {str(data): 1}
    config.write_text(config.read_text().replace("columns: [w1, w2]", "columns: [w1, w3]"))
    with pytest.raises(ConfigError, match=r"the vote column 'w3' is not in 'rows.json'; the columns of 'rows.json' are: "
                                          r"text, w1, w2"):
        check_config(config)


def test_error_lines_print_brackets_verbatim(tmp_path: Path):
    """An error naming a path or a YAML list (``[train]``) shows it as written, not eaten as console markup."""
    config = tmp_path / "run[train].yaml"
    config.write_text("classes: [A]\nsources: []\n")
    result = runner.invoke(app, ["check", str(config)])
    assert result.exit_code == 1
    assert "run[train].yaml" in result.stderr, result.stderr


def test_check_reads_the_answers_file_of_a_crowd_source(tmp_path: Path):
    (tmp_path / "items.csv").write_text("id,text\na,one\n")
    (tmp_path / "answers.csv").write_text("question,annotator,answer\na,w1,X\n")
    config = tmp_path / "crowd.yaml"
    config.write_text("classes: [X, Y]\nlabels_from: given\n"
                      "sources: [{path: items.csv, dataset: d, columns: {id: id},\n"
                      "           answers: {path: answers.csv, columns: {item: question}}}]\n")
    with pytest.raises(ConfigError) as error:
        check_config(config)
    assert "the answers' worker column 'worker' is not in 'answers.csv'; its columns are: annotator, answer, question" \
        in str(error.value)
    config.write_text(config.read_text().replace("{item: question}", "{item: question, worker: annotator}"))
    assert check_config(config).files == {str(tmp_path / "items.csv"): 1}


def test_check_names_a_missing_vote_count_column_and_accepts_a_label_only_source(tmp_path: Path):
    (tmp_path / "tally.csv").write_text("id,n_ham,n_spam\na,3,1\n")
    config = tmp_path / "counts.yaml"
    config.write_text("classes: [ham, spam]\n"
                      "sources: [{path: tally.csv, dataset: d, columns: {id: id, text: null},\n"
                      "           vote_counts: {columns: {ham: n_ham, spam: n_spam_votes}}}]\n"
                      "labeling: {vote_counts: true, model: {model: majority}}\n")
    with pytest.raises(ConfigError, match="the vote count column 'n_spam_votes' is not in 'tally.csv'; "
                                          "the columns of 'tally.csv' are: id, n_ham, n_spam"):
        check_config(config)
    config.write_text(config.read_text().replace("n_spam_votes", "n_spam"))
    assert check_config(config).files == {str(tmp_path / "tally.csv"): 1}


def test_check_opens_the_database_read_only_and_says_when_it_is_not_one(tmp_path: Path):
    """A ``db`` that is not a DuckDB file, or someone else's DuckDB database, is a problem named before any
    stage runs; a thresher database is opened read-only (nothing migrated, nothing written)."""
    import duckdb

    (tmp_path / "rows.csv").write_text("text\nhello\n")
    config = tmp_path / "t.yaml"

    def check(db: Path) -> str:
        config.write_text(f"classes: [A, B]\nlabels_from: given\ndb: {db}\nsources: [{{path: rows.csv, dataset: d}}]\n")
        try:
            check_config(config)
        except ConfigError as exc:
            return str(exc)
        return ""

    (tmp_path / "notes.duckdb").write_text("these are my notes, not a database\n")
    assert "db '" in check(tmp_path / "notes.duckdb") and "is not a DuckDB database" in check(tmp_path / "notes.duckdb")
    other = duckdb.connect(str(tmp_path / "mine.duckdb"))
    other.execute("CREATE TABLE sales (x INT)")
    other.close()
    assert "not a thresher project (tables: sales)" in check(tmp_path / "mine.duckdb")
    assert check(tmp_path / "new.duckdb") == "" and not (tmp_path / "new.duckdb").exists()
    from thresher.storage.schema import connect

    connect(tmp_path / "project.duckdb").close()
    before = (tmp_path / "project.duckdb").stat().st_mtime_ns
    assert check(tmp_path / "project.duckdb") == ""
    assert (tmp_path / "project.duckdb").stat().st_mtime_ns == before
    # A stage writing the database in another process holds its lock: check does not call that a problem.
    import subprocess
    import sys

    writer = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); time.sleep(120)", str(tmp_path / "project.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        assert check(tmp_path / "project.duckdb") == ""
    finally:
        writer.kill()
        writer.wait()


def test_the_json_schema_accepts_the_bundled_example_and_refuses_a_misspelt_field(tmp_path: Path):
    """`thresher schema` is what a YAML editor validates against: the bundled example config passes it,
    a misspelt field or a value outside a Literal does not."""
    import jsonschema
    import yaml

    result = runner.invoke(app, ["schema", "--out", str(tmp_path / "schema.json")])
    assert result.exit_code == 0, result.output
    schema = json.loads((tmp_path / "schema.json").read_text())
    example = yaml.safe_load((REPO / "examples" / "youtube" / "thresher.yaml").read_text())
    jsonschema.validate(example, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**example, "detcet": {}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**example, "labeling": {**example["labeling"], "model": {"model": "snorkel"}}}, schema)
    schema_model = schema["$defs"]["DenoiseConfig"]["properties"]
    assert "Snorkel" in schema["$defs"]["DenoiseConfig"]["description"]
    assert "tie between classes" in schema_model["tie_break"]["description"]  # the docs written beside the field
    jsonschema.validate({**example, "labeling": {**example["labeling"], "model": {"model": "my_parts.py:Mine"}}}, schema)


def test_explain_lists_a_sections_settings_with_your_values_and_their_docs(example: Path):
    result = runner.invoke(app, ["check", str(example), "--explain", "labeling.model"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "fit_splits" in line)
    assert "['train']" in row and "None" in row and "fit on every item" in row  # yours, the default, the doc
    assert "tie_break" in result.output and "ok" in result.output
    top = runner.invoke(app, ["check", str(example), "--explain", "."], env={"COLUMNS": "200"})
    assert top.exit_code == 0 and "(section)" in top.output and "db_lock_timeout" in top.output
    wrong = runner.invoke(app, ["check", str(example), "--explain", "detect.nope"])
    assert wrong.exit_code != 0 and "not a section" in wrong.output and "features" in wrong.output


def test_settings_shared_across_sections_are_set_once_at_the_top_level(tmp_path: Path):
    """SHARED declares them: each is copied into its sections, a section that says otherwise is refused,
    and the schema does not ask for them in the sections."""
    from thresher.pipeline.config import SHARED, config_from_dict, yaml_schema

    base = {"classes": ["A", "B"], "sources": [{"path": "x.csv", "dataset": "d"}], "labels_from": "given"}
    config = config_from_dict({**base, "select": None, "reweight": {}}, base_dir=tmp_path)
    assert config.select is None and config.reweight.labels_from == config.detect.labels_from == "given"
    assert config.export.weights_from == "reweight"  # a derived default: export_defaults
    with pytest.raises(ConfigError, match="Set labels_from once at the top level, not in 'detect'"):
        config_from_dict({**base, "detect": {"labels_from": "denoised"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="Set classes once at the top level, not in 'labeling'"):
        config_from_dict({**base, "labeling": {"classes": ["A", "C"]}}, base_dir=tmp_path)
    schema = yaml_schema()
    for name, sections in SHARED.items():
        for section in sections:
            definition = schema["$defs"][{"labeling": "LabelingConfig", "detect": "DetectConfig", "reweight": "ReweightConfig",
                                          "select": "SelectConfig", "export": "ExportConfig"}[section]]
            assert name not in definition.get("required", []) and "top level" in definition["properties"][name]["description"]


def test_every_config_field_carries_its_own_doc():
    """Each field of every config section has its documentation beside it (field_docs or Field(description=)),
    so the schema, editors and `thresher check --explain` describe every setting."""
    from thresher.core.config import StageConfig, field_docs
    from thresher.pipeline.config import PipelineConfig  # imports every section

    def sections(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from sections(sub)

    assert PipelineConfig in set(sections(StageConfig))
    undocumented = [f"{cls.__module__}.{cls.__name__}.{name}" for cls in set(sections(StageConfig))
                    for name, info in cls.model_fields.items()
                    if not info.description and name not in field_docs(cls) and cls.__module__.startswith("thresher")]
    assert undocumented == []
