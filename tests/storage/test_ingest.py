"""Ingest of every format, malformed input quarantined with exact reasons, idempotent re-ingest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from thresher.storage.ingest import IngestConfig, SourceConfig, ingest

CLASSES = ["HAM", "SPAM"]


def _config(path: Path, **source) -> IngestConfig:
    return IngestConfig(classes=CLASSES, sources=[SourceConfig(path=str(path), dataset="t", **source)])


def _rejects(con) -> list[tuple[int, str]]:
    return con.execute("SELECT line, reason FROM rejects ORDER BY line").fetchall()


MALFORMED_CSV = (
    b"id,text,label,lang\n"
    b"1,good song,HAM,en\n"  # line 2: ok
    b'2,"check out my channel",SPAM,en\n'  # 3: ok
    b"3,too,many,fields,here,x\n"  # 4: unparseable
    b"4,no label is fine,,en\n"  # 5: ok, label NULL
    b"\n"  # 6: blank, counted but not a row
    b"5,,SPAM,en\n"  # 7: missing_text
    b"6,bad label,MAYBE,en\n"  # 8: wrong_type
    b"7,caf\xe9 latin-1 bytes,HAM,en\n"  # 9: invalid_utf8
    b"8," + b"x" * 200 + b",HAM,en\n"  # 10: oversize_field
    b"1,good song,HAM,en\n"  # 11: duplicate_row of line 2
    b"2,different text,SPAM,en\n"  # 12: conflicting_id with line 3
    b'9,"multi\nline text",SPAM,en\n'  # 13-14: ok
    b'10,"unterminated quote,HAM,en\n'  # 15: unparseable
)


def test_malformed_csv_rows_are_quarantined_with_reasons(con, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(MALFORMED_CSV)
    summary = ingest(con, _config(path, columns={"id": "id", "text": "text", "label": "label"}, max_field_bytes=100))
    assert summary.new_items == 4
    assert dict(summary.rejected) == {
        "unparseable": 2, "missing_text": 1, "wrong_type": 1, "invalid_utf8": 1,
        "oversize_field": 1, "duplicate_row": 1, "conflicting_id": 1,
    }
    assert summary.rows == 12 and summary.sources[0].blank_lines == 1
    assert _rejects(con) == [
        (4, "unparseable"), (7, "missing_text"), (8, "wrong_type"), (9, "invalid_utf8"),
        (10, "oversize_field"), (11, "duplicate_row"), (12, "conflicting_id"), (15, "unparseable"),
    ]
    items = dict(con.execute("SELECT item_id, label FROM items").fetchall())
    assert items == {"t:1": 0, "t:2": 1, "t:4": None, "t:9": 1}
    assert con.execute("SELECT text, source_line FROM items WHERE item_id = 't:9'").fetchall() == [("multi\nline text", 13)]
    # The raw bytes of the bad-UTF-8 row are kept, escaped, not lost.
    raw = con.execute("SELECT raw FROM rejects WHERE reason = 'invalid_utf8'").fetchall()[0][0]
    assert "caf\\xe9 latin-1 bytes" in raw
    # Unmapped columns are kept.
    assert json.loads(con.execute("SELECT extra FROM items WHERE item_id = 't:1'").fetchall()[0][0]) == {"lang": "en"}


MALFORMED_JSONL = (
    b'{"id": 1, "text": "hello there", "label": 0}\n'  # ok
    b'{"id": 2, "text": "buy now", "label": "SPAM", "meta": {"a": 1}}\n'  # ok
    b'{"id": 3, "text": "broken json"\n'  # unparseable
    b"[1, 2, 3]\n"  # unparseable: not an object
    b'{"id": 4, "text": "caf\xe9"}\n'  # invalid_utf8
    b'{"id": 5, "text": 42, "label": 0}\n'  # wrong_type
    b'{"id": 6, "label": 1}\n'  # missing_text
    b'{"id": 7, "text": "x", "label": 5}\n'  # wrong_type: class id out of range
    b"\n"
    b'{"id": 8, "text": "' + b"y" * 300 + b'", "label": 0}\n'  # oversize_field
    b'{"id": 9, "text": "nested", "label": true}\n'  # wrong_type: boolean label
)


def test_an_unclosed_quote_costs_only_its_own_line(con, tmp_path):
    path = tmp_path / "quote.csv"
    rows = [f"q{i},good row {i},HAM" for i in range(1, 8)]
    path.write_text("id,text,label\n" + "\n".join(rows) + '\nq8,"never closed quote,HAM\nq9,after it,SPAM\n'
                    'q10,"a real\nmulti-line field",HAM\nq11,"another open quote,HAM\nq12,last,SPAM\n')
    summary = ingest(con, _config(path, columns={"id": "id", "text": "text", "label": "label"}))
    assert _rejects(con) == [(9, "unparseable"), (13, "unparseable")]
    detail, raw = con.execute("SELECT detail, raw FROM rejects WHERE line = 9").fetchall()[0]
    assert raw == 'q8,"never closed quote,HAM\n' and "parsing resumed at line 10" in detail
    texts = dict(con.execute("SELECT item_id, text FROM items").fetchall())
    assert texts == {**{f"t:q{i}": f"good row {i}" for i in range(1, 8)}, "t:q9": "after it",
                     "t:q10": "a real\nmulti-line field", "t:q12": "last"}
    assert summary.rows == len(texts) + 2


def test_lone_surrogates_and_nul_reject_their_row_not_the_file(con, tmp_path):
    """The issue's repro: half an emoji in any field of one JSONL row."""
    path = tmp_path / "s.jsonl"
    path.write_text('{"id":"s1","text":"ok","label":"HAM"}\n'
                    '{"id":"s2","text":"x","label":"HAM","note":"\\udc80"}\n'
                    '{"id":"s3","text":"half \\ud83d emoji","label":"SPAM"}\n'
                    '{"id":"\\ud800","text":"bad id","label":"SPAM"}\n'
                    '{"id":"s5","text":"nul\\u0000byte","label":"HAM"}\n'
                    '{"id":"s6","text":"fine \\ud83d\\ude00 emoji","label":"SPAM","\\udc80key":1}\n'
                    '{"id":"s7","text":"last good","label":"SPAM","nested":{"deep":["ok","\\udfff"]}}\n'
                    '{"id":"s8","text":"fine \\ud83d\\ude00 emoji","label":"SPAM"}\n')
    summary = ingest(con, _config(path, columns={"id": "id", "text": "text", "label": "label"}))
    assert _rejects(con) == [(2, "invalid_unicode"), (3, "invalid_unicode"), (4, "invalid_unicode"),
                             (5, "control_character"), (6, "invalid_unicode"), (7, "invalid_unicode")]
    details = dict(con.execute("SELECT line, detail FROM rejects").fetchall())
    assert "field 'note' holds a lone surrogate \\udc80" in details[2]
    assert "field 'nested.deep[1]'" in details[7] and "NUL" in details[5] and "column name" in details[6]
    assert sorted(con.execute("SELECT item_id, text FROM items").fetchall()) == [
        ("t:s1", "ok"), ("t:s8", "fine \U0001F600 emoji")]
    assert summary.rows == 8 and sum(summary.rejected.values()) == 6
    raw = con.execute("SELECT raw FROM rejects WHERE line = 2").fetchall()[0][0]
    assert "\\udc80" in raw  # the original row, as written


def test_malformed_jsonl_rows_are_quarantined_with_reasons(con, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(MALFORMED_JSONL)
    summary = ingest(con, _config(path, columns={"id": "id", "label": "label"}, max_field_bytes=100))
    assert summary.new_items == 2
    assert dict(summary.rejected) == {"unparseable": 2, "invalid_utf8": 1, "wrong_type": 3, "missing_text": 1, "oversize_field": 1}
    assert _rejects(con) == [
        (3, "unparseable"), (4, "unparseable"), (5, "invalid_utf8"), (6, "wrong_type"),
        (7, "missing_text"), (8, "wrong_type"), (10, "oversize_field"), (11, "wrong_type"),
    ]
    extra = con.execute("SELECT extra FROM items WHERE item_id = 't:2'").fetchall()[0][0]
    assert json.loads(extra) == {"meta": {"a": 1}}


def test_parquet_ingest_with_nulls_and_extra_columns(con, tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({
        "body": ["first", None, "third", "fourth"],
        "y": pa.array([1, 0, None, 7], pa.int64()),
        "score": [0.5, 0.1, 0.2, 0.3],
    }), path)
    summary = ingest(con, _config(path, columns={"text": "body", "gold": "y"}, split="train"))
    assert summary.new_items == 2
    assert dict(summary.rejected) == {"missing_text": 1, "wrong_type": 1}
    rows = con.execute("SELECT text, gold, split, extra FROM items ORDER BY text").fetchall()
    assert [(r[0], r[1], r[2], json.loads(r[3])) for r in rows] == [
        ("first", 1, "train", {"score": 0.5}), ("third", None, "train", {"score": 0.2}),
    ]


def test_wrench_ingest_keeps_weak_labels_as_source_votes(con, shared_data):
    folder = shared_data / "wrench_youtube"
    summary = ingest(con, _config(folder / "[tv]*.json", format="wrench"))
    assert summary.new_items == 1586 + 120 + 250 and not summary.rejected
    splits = dict(con.execute("SELECT split, count(*) FROM items GROUP BY split").fetchall())
    assert splits == {"train": 1586, "valid": 120, "test": 250}
    expected_votes = sum(
        sum(v != -1 for v in entry["weak_labels"])
        for name in ("train", "valid", "test")
        for entry in json.loads((folder / f"{name}.json").read_text()).values()
    )
    assert con.execute("SELECT count(*) FROM source_votes").fetchall()[0][0] == expected_votes
    gold = dict(con.execute("SELECT gold, count(*) FROM items WHERE split = 'test' GROUP BY gold").fetchall())
    assert gold == {0: 132, 1: 118}


def test_wrench_file_of_the_wrong_shape_is_rejected_not_crashed(con, shared_data):
    summary = ingest(con, _config(shared_data / "wrench_youtube" / "label.json", format="wrench"))
    assert summary.new_items == 0 and dict(summary.rejected) == {"unparseable": 2}


def test_reingest_is_idempotent(con, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(MALFORMED_CSV)
    config = _config(path, columns={"id": "id", "text": "text", "label": "label"}, max_field_bytes=100)
    first = ingest(con, config)
    second = ingest(con, config)
    assert second.new_items == 0 and second.already_present == first.new_items
    assert con.execute("SELECT count(*) FROM items").fetchall()[0][0] == first.new_items
    assert con.execute("SELECT count(*) FROM rejects").fetchall()[0][0] == sum(first.rejected.values())


def test_tsv_files_are_split_on_tabs_unless_told_otherwise(con, tmp_path):
    (tmp_path / "a.tsv").write_text("text\tlabel\ngood song, really\tHAM\ncheck out my channel\tSPAM\n")
    summary = ingest(con, _config(tmp_path / "a.tsv", columns={"text": "text", "label": "label"}))
    assert summary.new_items == 2 and _rejects(con) == []
    assert con.execute("SELECT text, label FROM items ORDER BY label").fetchall() == [
        ("good song, really", 0), ("check out my channel", 1)]
    (tmp_path / "b.tsv").write_text("text;label\nnice;HAM\n")  # an explicit delimiter wins over the extension
    assert ingest(con, _config(tmp_path / "b.tsv", delimiter=";", columns={"label": "label"})).new_items == 1


def test_content_hash_ids_are_stable_without_an_id_column(con, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n{"text": "a", "label": 0}\n')
    summary = ingest(con, _config(path, columns={"label": "label"}))
    assert summary.new_items == 2 and dict(summary.rejected) == {"duplicate_row": 1}
    ids = [r[0] for r in con.execute("SELECT item_id FROM items ORDER BY item_id").fetchall()]
    path.write_text('{"text": "b", "label": 1}\n{"text": "a", "label": 0}\n')  # same rows, other order
    again = ingest(con, _config(path, columns={"label": "label"}))
    assert again.already_present == 2 and again.new_items == 0
    assert [r[0] for r in con.execute("SELECT item_id FROM items ORDER BY item_id").fetchall()] == ids


def test_line_ids_keep_repeated_rows(con, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n{"text": "a"}\n')
    summary = ingest(con, _config(path, row_ids="line"))
    assert summary.new_items == 2 and not summary.rejected
    assert [r[0] for r in con.execute("SELECT item_id FROM items ORDER BY item_id").fetchall()] == ["t:rows.jsonl:1", "t:rows.jsonl:2"]


def test_changed_row_with_an_existing_id_is_a_conflict_not_an_overwrite(con, tmp_path):
    first = tmp_path / "a.jsonl"
    first.write_text('{"id": 1, "text": "original"}\n')
    ingest(con, _config(first, columns={"id": "id"}))
    second = tmp_path / "b.jsonl"
    second.write_text('{"id": 1, "text": "edited"}\n')
    summary = ingest(con, _config(second, columns={"id": "id"}))
    assert dict(summary.rejected) == {"conflicting_id": 1}
    assert con.execute("SELECT text FROM items").fetchall() == [("original",)]


def test_a_failing_file_rolls_back_the_whole_ingest(con, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "fine"}\n')
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"te\xffxt\nrow\n")  # the header itself is not UTF-8: the file cannot be read
    config = IngestConfig(classes=CLASSES, sources=[
        SourceConfig(path=str(good), dataset="t"), SourceConfig(path=str(bad), dataset="t"),
    ])
    with pytest.raises(ValueError, match="header .* is not valid UTF-8"):
        ingest(con, config)
    assert con.execute("SELECT count(*) FROM items").fetchall()[0][0] == 0


def test_missing_source_and_unknown_format_are_clear_errors(con, tmp_path):
    with pytest.raises(FileNotFoundError, match="matches no file"):
        ingest(con, _config(tmp_path / "nothing-*.csv"))
    odd = tmp_path / "rows.txt"
    odd.write_text("x")
    with pytest.raises(ValueError, match="cannot be inferred"):
        ingest(con, _config(odd))


def test_bundled_youtube_csvs(con):
    from tests.conftest import YOUTUBE_EXAMPLE

    config = _config(YOUTUBE_EXAMPLE / "data" / "*.csv", columns={"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"})
    summary = ingest(con, config)
    assert summary.rows == 1956 and summary.new_items == 1953 and dict(summary.rejected) == {"duplicate_row": 3}
    extra = json.loads(con.execute("SELECT extra FROM items LIMIT 1").fetchall()[0][0])
    assert set(extra) == {"AUTHOR", "DATE"}


def test_wrench_lf_names(con, shared_data):
    names = ["my", "subscribe", "link", "please", "song", "check_out", "short", "person", "polarity", "subjectivity"]
    summary = ingest(con, _config(shared_data / "wrench_youtube" / "valid.json", format="wrench", lf_names=names))
    assert summary.new_items == 120
    assert {r[0] for r in con.execute("SELECT DISTINCT lf FROM source_votes").fetchall()} <= set(names)
    with pytest.raises(ValueError, match="name 2 LFs, but item"):
        ingest(con, _config(shared_data / "wrench_youtube" / "test.json", format="wrench", lf_names=names[:2]))


def test_batched_loading_equals_one_batch(tmp_path, shared_data):
    """Files are loaded in batches (bounded memory); batch boundaries change nothing, duplicates
    across batches included."""
    from thresher.storage.ingest import ingest_file
    from thresher.storage.schema import connect

    config = SourceConfig(path=str(shared_data / "youtube_spam_collection_uci" / "Youtube0[1-2]-*.csv"),
                          dataset="youtube", columns={"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"})
    tables = {}
    for batch_rows in (7, 50_000):
        con = connect(tmp_path / f"b{batch_rows}.duckdb")
        summaries = [ingest_file(con, path, config, ["HAM", "SPAM"], batch_rows=batch_rows)
                     for path in sorted((shared_data / "youtube_spam_collection_uci").glob("Youtube0[1-2]-*.csv"))]
        tables[batch_rows] = (
            con.execute("SELECT item_id, item_seq, content_hash, source_line FROM items ORDER BY item_seq").fetchall(),
            con.execute("SELECT source, line, reason FROM rejects ORDER BY ALL").fetchall(),
            [(s.rows, s.new_items, s.already_present, dict(s.rejected)) for s in summaries],
        )
        con.close()
    assert tables[7] == tables[50_000]
    assert len(tables[7][0]) > 600 and [seq for _, seq, _, _ in tables[7][0]] == list(range(1, len(tables[7][0]) + 1))


def test_repeats_far_apart_are_found_in_the_database_not_a_python_map(con, tmp_path):
    """A file's earlier ids are kept in a temporary DuckDB table (memory does not grow with the file):
    a repeat many batches later is still a duplicate_row (same content) or conflicting_id (other content)."""
    from thresher.storage.ingest import ingest_file

    lines = ["id,text"] + [f"r{i},row {i}" for i in range(50)] + ["r3,row 3", "r7,changed", "r49,row 49"]
    path = tmp_path / "far.csv"
    path.write_text("\n".join(lines) + "\n")
    config = SourceConfig(path=str(path), dataset="d", columns={"text": "text", "id": "id"})
    summary = ingest_file(con, path, config, ["A", "B"], batch_rows=4)
    assert (summary.rows, summary.new_items, dict(summary.rejected)) == (53, 50, {"duplicate_row": 2, "conflicting_id": 1})
    rejects = con.execute("SELECT line, reason, detail FROM rejects ORDER BY line").fetchall()
    assert rejects == [(52, "duplicate_row", "item id 'd:r3' already seen at line 5"),
                       (53, "conflicting_id", "item id 'd:r7' already seen at line 9"),
                       (54, "duplicate_row", "item id 'd:r49' already seen at line 51")]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_file_rows'").fetchall()[0][0] == 0


@pytest.mark.parametrize("id_column", ["id", None])
def test_columnar_parquet_path_equals_the_row_path(tmp_path, id_column):
    """Flat Parquet files are validated a column at a time; on a file holding every kind of bad row
    the items and rejects (reasons, details, raw rows) are those of the row-by-row path exactly."""
    import datetime

    from thresher.storage.ingest import ingest_file
    from thresher.storage.schema import connect

    texts = ["good one", "nul\x00inside", "x" * 300, "", "  \t", "\x1c\x1d", None, "bad label", "float label",
             "nan label", "out of range", "empty id", "null id", "good one", "changed", "emoji \U0001F600", "good one",
             "ünïcode tail  ", "extra nul", "extra big"]
    n = len(texts)
    table = pa.table({
        "id": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "  ", None, "a", "a", "p", "q", "r", "s", "t"],
        "text": texts,
        "label": ["HAM", "SPAM", None, "HAM", "HAM", "spam", "HAM", "EGGS", "1", "HAM", "7", "HAM", "HAM", "HAM",
                  "SPAM", " Spam ", "HAM", "0", "HAM", "HAM"],
        "score": pa.array([1.0, 0.0, None, 1.0, 1.0, 1.5, 0.0, 1.0, 1.0, float("nan"), 1.0, 1.0, 1.0, 1.0, 1.0,
                           0.0, 1.0, 1.0, 1.0, 1.0]),
        "note": ["n"] * (n - 2) + ["a\x00b", "y" * 300],
        "when": [datetime.datetime(2026, 1, 1, i) for i in range(n)],
        "count": list(range(n)),
    })
    path = tmp_path / "hostile.parquet"
    pq.write_table(table, path)
    columns = {"text": "text", "label": "label", "gold": "score"} | ({"id": id_column} if id_column else {})
    config = SourceConfig(path=str(path), dataset="d", columns=columns, max_field_bytes=200)
    results = {}
    for columnar in (True, False):
        con = connect(tmp_path / f"{columnar}.duckdb")
        summary = ingest_file(con, path, config, ["HAM", "SPAM"], batch_rows=3, columnar=columnar)
        results[columnar] = (
            con.execute("SELECT * EXCLUDE (ingested_at) FROM items ORDER BY item_seq").fetchall(),
            con.execute("SELECT * EXCLUDE (first_seen) FROM rejects ORDER BY line").fetchall(),
            (summary.rows, summary.new_items, dict(summary.rejected)),
        )
        con.close()
    assert results[True] == results[False]
    items, rejects, counts = results[True]
    assert counts[0] == n and counts[1] + sum(counts[2].values()) == n
    assert {"control_character", "oversize_field", "missing_text", "wrong_type"} <= set(counts[2])
    assert len(items) >= 5 and len(rejects) >= 10


def test_a_multi_line_record_with_extra_fields_is_one_reject(con, tmp_path):
    """Found by the fuzz test: a well-quoted text spanning lines, in a record with one field too many,
    was rejected line by line (two rejects for one row, the second a bogus wrong_type)."""
    path = tmp_path / "extra.csv"
    path.write_text('id,text,label\nr0,"0\n0",HAM,extra\nr1,fine,SPAM\n')
    summary = ingest(con, _config(path, columns={"id": "id", "text": "text", "label": "label"}))
    assert _rejects(con) == [(2, "unparseable")]
    assert con.execute("SELECT raw FROM rejects").fetchall() == [('r0,"0\n0",HAM,extra\n',)]
    assert summary.rows == 2 and summary.new_items == 1


def test_reading_a_parquet_file_holds_one_row_group_at_a_time(tmp_path):
    """A 40-row-group file (~16 MB of text) is parsed column by column with Arrow's memory staying
    near one row group: pyarrow's default pre-buffering kept every row group read so far (the whole
    file by its end: 16 MB here, 1.8 GB for the 10M-row benchmark)."""
    from thresher.storage.ingest import SourceSummary, iter_parsed

    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    texts = [" ".join(rng.choice(words, 60)) for _ in range(40_000)]
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": texts}), path, row_group_size=1_000)
    config = SourceConfig(path=str(path), dataset="d", columns={"text": "text", "id": "id"})
    baseline, peak, rows = pa.total_allocated_bytes(), 0, 0
    for batch in iter_parsed(path, config, ["A", "B"], SourceSummary(source=str(path)), [], batch_rows=1_000):
        rows += batch.rows.num_rows
        peak = max(peak, pa.total_allocated_bytes() - baseline)
        del batch
    assert rows == len(texts)
    assert path.stat().st_size > 2_000_000 and peak < 4_000_000, peak


def test_a_json_array_of_objects_is_rows_and_a_json_object_is_still_wrench(con, tmp_path, shared_data):
    """``.json`` holding an array (pandas ``to_json(orient="records")``) is read as rows; an element
    that is not an object is a reject with its place; WRENCH files (an object keyed by index) still load."""
    rows = [{"id": "a", "text": "free prize now", "label": "SPAM", "meta": {"n": 1}},
            "just a string",
            {"id": "b", "text": "see you at lunch", "label": "HAM"},
            {"id": "c", "text": "", "label": "HAM"}]
    path = tmp_path / "rows.json"
    path.write_text("\n  " + json.dumps(rows, indent=1))
    summary = ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
        path=str(path), dataset="arr", columns={"text": "text", "label": "label", "id": "id"})]))
    assert summary.new_items == 2
    items = con.execute("SELECT item_id, label, extra FROM items ORDER BY item_id").fetchall()
    assert [(i, label) for i, label, _ in items] == [("arr:a", 1), ("arr:b", 0)]
    assert json.loads(items[0][2]) == {"meta": {"n": 1}}
    rejects = con.execute("SELECT line, reason, detail, raw FROM rejects ORDER BY line").fetchall()
    assert [(line, reason) for line, reason, _, _ in rejects] == [(2, "unparseable"), (4, "missing_text")]
    assert rejects[0][2] == "expected a JSON object, got str" and rejects[0][3] == '"just a string"'
    wrench = ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
        path=str(shared_data / "wrench_youtube" / "valid.json"), dataset="youtube")]))
    assert wrench.new_items == 120


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_label_map_turns_raw_values_into_classes_or_no_label(con, tmp_path, fmt):
    """-1 for "no label" and names that are not the classes' (pos/neg, ±1 gold) are mapped, not rejected."""
    table = pa.table({"id": ["a", "b", "c", "d"], "text": ["great film", "awful", "fine I guess", "meh"],
                      "label": ["pos", "neg", "-1", "maybe"], "gold": [1.0, -1.0, 1.0, None]})
    path = tmp_path / f"rows.{fmt}"
    if fmt == "csv":
        table.to_pandas().to_csv(path, index=False)
    else:
        pq.write_table(table, path)
    label_map = {-1: None, "pos": "POS", "neg": "NEG", 1: "POS"}
    summary = ingest(con, IngestConfig(classes=["NEG", "POS"], sources=[SourceConfig(
        path=str(path), dataset="m", columns={"text": "text", "label": "label", "gold": "gold", "id": "id"},
        label_map=label_map)]))
    rows = con.execute("SELECT item_id, label, gold FROM items ORDER BY item_id").fetchall()
    # gold -1 maps to "no label" too: one map serves both columns
    assert rows == [("m:a", 1, 1), ("m:b", 0, None), ("m:c", None, 1)]
    assert summary.new_items == 3
    assert con.execute("SELECT line, reason FROM rejects").fetchall() == [(5 if fmt == "csv" else 4, "wrong_type")]


def test_vote_columns_become_source_votes_one_lf_per_column(con, tmp_path):
    """Per-worker answers in columns: each column is an LF named by it; -1 and empty cells abstain;
    the labeling stage then denoises them with source_votes, as WRENCH's weak labels."""
    from thresher.labeling.config import LabelingConfig
    from thresher.labeling.stage import label

    path = tmp_path / "crowd.csv"
    path.write_text("id,text,w1,w2,w3\n"
                    "a,win cash now,SPAM,SPAM,-1\n"
                    "b,lunch at noon?,HAM,,HAM\n"
                    "c,click this link,SPAM,HAM,SPAM\n"
                    "d,no answers at all,-1,,\n"
                    "e,bad answer,MAYBE,HAM,HAM\n")
    summary = ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[SourceConfig(
        path=str(path), dataset="crowd", columns={"text": "text", "id": "id"},
        votes={"columns": ["w1", "w2", "w3"], "abstain": -1})]))
    assert summary.new_items == 4
    assert con.execute("SELECT line, reason FROM rejects").fetchall() == [(6, "wrong_type")]
    votes = con.execute("SELECT item_id, lf, vote FROM source_votes ORDER BY ALL").fetchall()
    assert votes == [("crowd:a", "w1", 1), ("crowd:a", "w2", 1), ("crowd:b", "w1", 0), ("crowd:b", "w3", 0),
                     ("crowd:c", "w1", 1), ("crowd:c", "w2", 0), ("crowd:c", "w3", 1)]
    extra = con.execute("SELECT extra FROM items WHERE item_id = 'crowd:a'").fetchall()[0][0]
    assert json.loads(extra) == {}  # the vote columns are votes, not extra columns
    result = label(con, LabelingConfig(classes=["HAM", "SPAM"], source_votes=True, model={"model": "majority"}),
                   run_id="crowd")
    assert result.n_lfs == 3 and result.n_votes == 7
    labels = dict(con.execute("SELECT item_id, label FROM labels WHERE covered").fetchall())
    assert labels == {"crowd:a": 1, "crowd:b": 0, "crowd:c": 1}
    with pytest.raises(ValueError, match="not both"):
        SourceConfig(path="x.csv", dataset="d", votes={"columns": ["w1"]}, lf_names=["a"])


def test_vote_column_patterns_name_every_matching_column(con, tmp_path):
    """``votes.columns: [w*]`` takes every worker column of the file (a crowd with many workers needs no
    list); a pattern that matches nothing is an error naming the columns."""
    path = tmp_path / "crowd.csv"
    path.write_text("id,text,w2,w1,notes,w10\na,win cash now,SPAM,SPAM,x,HAM\nb,lunch?,HAM,,y,HAM\n")
    source = SourceConfig(path=str(path), dataset="crowd", columns={"text": "text", "id": "id"},
                          votes={"columns": ["w*"], "abstain": None})
    ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[source]))
    votes = con.execute("SELECT item_id, lf, vote FROM source_votes ORDER BY ALL").fetchall()
    assert votes == [("crowd:a", "w1", 1), ("crowd:a", "w10", 0), ("crowd:a", "w2", 1), ("crowd:b", "w10", 0),
                     ("crowd:b", "w2", 0)]
    extra = con.execute("SELECT extra FROM items WHERE item_id = 'crowd:a'").fetchall()[0][0]
    assert json.loads(extra) == {"notes": "x"}  # matched columns are votes, the others stay extra
    with pytest.raises(ValueError, match="pattern 'annotator_\\*' matches no column"):
        ingest(con, IngestConfig(classes=["HAM", "SPAM"], sources=[source.model_copy(
            update={"votes": source.votes.model_copy(update={"columns": ["annotator_*"]})})]))


def test_a_huge_bad_line_keeps_a_bounded_prefix_and_its_length(con, tmp_path):
    """A 5 MB row over max_field_bytes is quarantined with the start of its text and its full length,
    not stored whole; the rows around it load."""
    from thresher.storage.ingest import RAW_LIMIT

    path = tmp_path / "big.csv"
    path.write_text("id,text\n1,fine\n2," + "z" * 5_000_000 + "\n3,also fine\n", encoding="utf-8")
    summary = ingest(con, IngestConfig(classes=["A", "B"], sources=[SourceConfig(
        path=str(path), dataset="d", columns={"id": "id", "text": "text"})]))
    assert summary.new_items == 2 and dict(summary.rejected) == {"oversize_field": 1}
    raw, = con.execute("SELECT raw FROM rejects").fetchone()
    assert raw.startswith("2,zzz") and len(raw) < RAW_LIMIT + 100 and "truncated: 5,000,003 characters in all" in raw
