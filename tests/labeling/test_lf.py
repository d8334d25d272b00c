"""LFs: per-item and SQL paths agree, Snorkel LFs and SQL LFs give identical votes on real data."""

from __future__ import annotations


import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thresher.labeling.apply import LFFaultError, apply_python_lfs, apply_sql_lfs, validate_sql_lfs
from thresher.labeling.lf import ABSTAIN, KeywordLF, LookupLF, PythonLF, RegexLF, Row, SqlLF, load_python_lf, load_rule_file
from thresher.labeling.matrix import vote_matrix
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
from tests.conftest import YOUTUBE_EXAMPLE

HAM, SPAM = 0, 1


@pytest.fixture
def youtube(con):
    ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
        path=str(YOUTUBE_EXAMPLE / "data" / "*.csv"), dataset="youtube",
        columns={"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"})]))
    return con


def _items(con) -> tuple[list[str], list[str]]:
    rows = con.execute("SELECT item_id, text FROM items ORDER BY item_id").fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


def snorkel_lfs() -> list:
    """YouTube heuristics written the way a Snorkel user writes them (the LF benchmark's; its
    ``THRESHER`` list holds their SQL twins). Imported here: snorkel loads in seconds."""
    from benchmarks.lf_apply import SNORKEL

    return SNORKEL


def sql_twins() -> list:
    from benchmarks.lf_apply import THRESHER

    return THRESHER


def snorkel_votes(texts: list[str]) -> np.ndarray:
    """Snorkel's own LFApplier over ``snorkel_lfs()``."""
    from snorkel.labeling import LFApplier

    return LFApplier(snorkel_lfs()).apply([Row(text=t) for t in texts], progress_bar=False)


def test_snorkel_lfs_and_sql_lfs_give_identical_votes_on_youtube(youtube):
    item_ids, texts = _items(youtube)
    snorkel_L = snorkel_votes(texts)
    twins = sql_twins()
    sql_L = vote_matrix(apply_sql_lfs(youtube, twins), item_ids, [lf.name for lf in twins])
    assert (sql_L != ABSTAIN).sum() > 500  # the LFs really fire
    np.testing.assert_array_equal(sql_L, snorkel_L)


def test_snorkel_lfs_run_unchanged_through_the_python_applier(youtube):
    item_ids, texts = _items(youtube)
    lfs = [PythonLF(f) for f in snorkel_lfs()]
    votes, faults = apply_python_lfs(youtube, lfs)
    L = vote_matrix(votes, item_ids, [lf.name for lf in lfs])
    expected = snorkel_votes(texts)
    np.testing.assert_array_equal(L, expected)
    assert not faults


def test_python_lf_file_with_a_snorkel_preprocessor(youtube):
    lf = load_python_lf(f"{YOUTUBE_EXAMPLE / 'lfs.py'}:short_comment")
    assert lf.name == "short_comment" and lf.kind == "python"
    assert lf(Row(text="cool video<br />\ufeff")) == HAM
    votes, _ = apply_python_lfs(youtube, [lf])
    assert 300 < votes.num_rows < 700


def _sql_votes(lf, texts: list[str]) -> list[int]:
    con = duckdb.connect()
    con.execute("CREATE TABLE items (item_id VARCHAR, text VARCHAR)")
    con.executemany("INSERT INTO items VALUES (?, ?)", [(f"{i:05d}", t) for i, t in enumerate(texts)])
    votes = apply_sql_lfs(con, [lf])
    L = vote_matrix(votes, [f"{i:05d}" for i in range(len(texts))], [lf.name])
    return L[:, 0].tolist()


PROPERTY_LFS = [
    KeywordLF("kw", terms=["free", "win cash"], label=1),
    KeywordLF("kw_all", terms=["free", "now"], label=1, mode="all", case_sensitive=True),
    KeywordLF("kw_sub", terms=["caf\u00e9"], label=0, word_boundary=False),
    KeywordLF("kw_s", terms=["stop", "kash"], label=1),  # ASCII terms: the literal gate applies
    RegexLF("re_b", pattern=r"\bwin\w*\b", label=1, case_sensitive=False),
    RegexLF("re_ds", pattern=r"\d+\s?%|\$\s*\d", label=1),
    LookupLF("lookup", terms={"free": 1, "win cash": 1, "café": 0, "now": 0}),
    SqlLF("sql", where="length(text) > 5 AND text ILIKE '%win%'", label=1),
]
# Includes the characters RE2 folds onto ASCII letters (U+017F, U+212A) and other case-folding traps.
ALPHABET = st.sampled_from(list("freewincashnowCAFÉé $%_0123456789\u00a0\u00e9\u0130\u017f\u212a\u03c2\u03a3\t\n-.")
                           + ["free", "win", "now", "café", "FREE", "ſtop", "Kash"])


@pytest.mark.parametrize("lf", PROPERTY_LFS, ids=lambda lf: lf.name)
@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.lists(ALPHABET, max_size=12).map("".join), min_size=1, max_size=20))
def test_per_item_path_matches_duckdb_on_any_text(lf, texts):
    assert [lf(Row(text=t)) for t in texts] == _sql_votes(lf, texts)


def test_ascii_word_semantics_are_those_of_re2():
    lf = RegexLF("re", pattern=r"\bwin\b", label=1)
    texts = ["win", "éwin", "winé", "win_", "a\u00a0win"]
    assert [lf(Row(text=t)) for t in texts] == _sql_votes(lf, texts) == [1, 1, 1, -1, 1]


def test_invalid_definitions_fail_clearly():
    with pytest.raises(ValueError, match="'name' of an LF"):
        KeywordLF("bad name!", terms=["x"], label=1)
    with pytest.raises(ValueError, match="'terms'"):
        KeywordLF("k", terms=[""], label=1)
    with pytest.raises(ValueError, match="not a valid regex"):
        RegexLF("r", pattern="(unclosed", label=1)
    with pytest.raises(ValueError, match="'file.py:name'"):
        load_python_lf("no_colon_here")


def test_lf_version_changes_with_the_definition():
    a = KeywordLF("k", terms=["x"], label=1)
    assert a.version() == KeywordLF("k", terms=["x"], label=1).version()
    assert a.version() != KeywordLF("k", terms=["y"], label=1).version()


def _broken(x):
    if "subscribe" in x.text.lower():
        raise KeyError("boom")
    return ABSTAIN


def test_a_raising_lf_abstains_is_counted_and_fails_above_the_fault_rate(youtube):
    votes, faults = apply_python_lfs(youtube, [PythonLF(_broken)], max_fault_rate=0.2)
    assert votes.num_rows == 0 and 200 < faults.counts["_broken"] < 300
    examples = faults.examples["_broken"]
    assert len(examples) == 3 and all(e[1] == "KeyError: 'boom'" for e in examples)
    with pytest.raises(LFFaultError, match=r"'_broken' raised on \d+ of 1953 items \(1\d\.\d%\), e.g. youtube:"):
        apply_python_lfs(youtube, [PythonLF(_broken)], max_fault_rate=0.05)


@pytest.mark.slow
def test_worker_processes_give_the_same_votes(youtube):
    lfs = [PythonLF(f) for f in snorkel_lfs()]
    lfs.append(load_python_lf(f"{YOUTUBE_EXAMPLE / 'lfs.py'}:short_comment"))  # loaded from a file path
    lfs.append(PythonLF(_broken))
    serial, serial_faults = apply_python_lfs(youtube, lfs, max_fault_rate=1.0)
    parallel, parallel_faults = apply_python_lfs(youtube, lfs, max_fault_rate=1.0, n_jobs=2, batch_size=300)
    assert serial.equals(parallel) and serial.num_rows > 1000
    assert serial_faults.counts == parallel_faults.counts


def test_patterns_re2_cannot_run_fall_back_to_python_re(youtube):
    from thresher.labeling.config import LabelingConfig
    from thresher.labeling.stage import label

    lf = RegexLF("repeated_char", pattern=r"(\w)\1{4}", label=SPAM)  # back-reference
    assert not lf.uses_re2 and lf.sql() is None
    assert lf(Row(text="yesssss")) == SPAM and lf(Row(text="yes")) == ABSTAIN
    config = LabelingConfig(classes=["HAM", "SPAM"], lfs=[
        {"kind": "regex", "name": "repeated_char", "label": "SPAM", "pattern": r"(\w)\1{4}"},
        {"kind": "keyword", "name": "subscribe", "label": "SPAM", "terms": ["subscribe"]},
        {"kind": "keyword", "name": "song", "label": "HAM", "terms": ["song"]},
    ])
    label(youtube, config, run_id="fb")
    item_ids, texts = _items(youtube)
    expected = sum(lf(Row(text=t)) != ABSTAIN for t in texts)
    stored = youtube.execute("SELECT count(*) FROM votes WHERE run_id = 'fb' AND lf = 'repeated_char'").fetchall()[0][0]
    assert stored == expected > 0


def test_rule_file_errors_name_the_line(tmp_path):
    path = tmp_path / "rules.txt"
    path.write_text("spam\tfree\tseed\nmaybe\twin\n")
    with pytest.raises(ValueError, match="rules.txt:2: label 'maybe'"):
        load_rule_file(path, classes=["ham", "spam"])
    path.write_text("spam only a label\n")
    with pytest.raises(ValueError, match="rules.txt:1: a rule is"):
        load_rule_file(path, classes=["ham", "spam"])
    path.write_text("spam\tfree\tseed\nham\t(?i)thanks\n")
    lfs = load_rule_file(path, classes=["ham", "spam"], prefix="r")
    assert [(lf.name, lf.label) for lf in lfs] == [("r_000", 1), ("r_001", 0)]


def test_sql_lfs_read_item_columns_but_never_gold(youtube):
    lfs = [SqlLF("short", where="length(text) < 25", label=HAM),
           SqlLF("author_caps", where="regexp_matches(extra->>'AUTHOR', '^[A-Z ]+$')", label=SPAM)]
    item_ids, texts = _items(youtube)
    L = vote_matrix(apply_sql_lfs(youtube, lfs), item_ids, ["short", "author_caps"])
    assert (L[:, 0] == HAM).sum() == sum(len(t) < 25 for t in texts) > 100
    rows = [Row(**r) for r in (dict(zip(("item_id", "text", "AUTHOR"), v)) for v in youtube.execute(
        "SELECT item_id, text, extra->>'AUTHOR' FROM items ORDER BY item_id LIMIT 200").fetchall())]
    assert [lfs[1](r) for r in rows] == L[:200, 1].tolist()
    with pytest.raises(ValueError, match="LF 'cheat' \\(sql\\) is not valid SQL here.*gold"):
        validate_sql_lfs(youtube, [SqlLF("cheat", where="gold = 1", label=SPAM)])


def test_lookup_conflicts_abstain():
    lf = LookupLF("topic", terms={"goal": 0, "election": 1, "vote": 1})
    texts = ["a goal", "the vote and the election", "goal of the election", "nothing"]
    assert [lf(Row(text=t)) for t in texts] == _sql_votes(lf, texts) == [0, 1, -1, -1]


def test_bad_lfs_are_rejected_before_any_work(youtube, tmp_path):
    from thresher.labeling.config import LabelingConfig
    from thresher.labeling.stage import label

    with pytest.raises(ValueError, match="'broken_re'.*not a valid regex"):
        LabelingConfig(classes=["HAM", "SPAM"], lfs=[{"kind": "regex", "name": "broken_re", "label": "SPAM", "pattern": "(open"}]).build_lfs()
    config = LabelingConfig(classes=["HAM", "SPAM"], lfs=[
        {"kind": "keyword", "name": "k1", "label": "SPAM", "terms": ["subscribe"]},
        {"kind": "keyword", "name": "k2", "label": "HAM", "terms": ["song"]},
        {"kind": "sql", "name": "broken_sql", "label": "HAM", "where": "length(text <"},
    ])
    with pytest.raises(ValueError, match="LF 'broken_sql' \\(sql\\) is not valid SQL here: Parser Error"):
        label(youtube, config, run_id="bad")
    assert youtube.execute("SELECT count(*) FROM labels").fetchall() == [(0,)]


def test_lookup_terms_file_from_config(youtube, tmp_path):
    from thresher.labeling.config import LabelingConfig

    terms = tmp_path / "terms.csv"
    terms.write_text("term,label\nsubscribe,SPAM\nmy channel,SPAM\nlove this song,HAM\n")
    lfs = LabelingConfig(classes=["HAM", "SPAM"], lfs=[{"kind": "lookup", "name": "lk", "terms_file": str(terms)}]).build_lfs()
    assert lfs[0].terms == {"subscribe": 1, "my channel": 1, "love this song": 0}
    with pytest.raises(ValueError, match="exactly one of 'terms' and 'terms_file'"):
        LabelingConfig(classes=["HAM", "SPAM"], lfs=[{"kind": "lookup", "name": "lk"}])


OVERLAPPING = [
    KeywordLF("video", terms=["video"], label=HAM),
    KeywordLF("my_video", terms=["my video", "my vid"], label=SPAM),
    KeywordLF("deo_clip", terms=["deo clip"], label=HAM, word_boundary=False),
    LookupLF("lk", terms={"clip": 0, "vid": 1}),
    RegexLF("re_vid", pattern=r"vid(eo)?s?\b", label=SPAM, case_sensitive=False),
    RegexLF("re_alt", pattern=r"my (video|clip)|ideo", label=HAM),
]
GATE_ALPHABET = st.sampled_from(["my ", "video", "vid", "deo", " clip", "ideo", "MY VIDEO", "\u017f", " ", "s", "e"])


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.lists(GATE_ALPHABET, max_size=8).map("".join), min_size=1, max_size=15))
def test_gates_never_drop_a_match_of_lfs_applied_together(texts):
    con = duckdb.connect()
    con.execute("CREATE TABLE items (item_id VARCHAR, text VARCHAR)")
    con.executemany("INSERT INTO items VALUES (?, ?)", [(f"{i:05d}", t) for i, t in enumerate(texts)])
    L = vote_matrix(apply_sql_lfs(con, OVERLAPPING), [f"{i:05d}" for i in range(len(texts))], [lf.name for lf in OVERLAPPING])
    expected = [[lf(Row(text=t)) for lf in OVERLAPPING] for t in texts]
    assert L.tolist() == expected


def test_required_literals():
    from thresher.labeling.lf.literals import required_literals

    assert required_literals(r"(?i)\bwin(ner|ning)?\b") == ["win"]
    assert required_literals(r"call\s+(now|today)|\bcall 0\d") == ["call", "call 0"]
    assert required_literals(r"(\w)\1{3}") is None and required_literals(r"a?b?") is None
