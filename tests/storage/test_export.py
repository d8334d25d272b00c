"""Export round-trip: shards + manifest, every row exactly once across ranks, corruption detected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from thresher.labeling.config import LabelingConfig
from thresher.labeling.stage import label
from thresher.reweighting.detect.stage import DetectConfig, detect
from thresher.storage.export import ExportConfig, export, sha256_file
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
from thresher.storage.schema import connect
from tests.conftest import REPO, YOUTUBE_EXAMPLE

CLASSES = ["HAM", "SPAM"]


@pytest.fixture(scope="module")
def pipeline_db(tmp_path_factory) -> Path:
    """A database that went through ingest, label and detect on the bundled YouTube data."""
    path = tmp_path_factory.mktemp("export") / "thresher.duckdb"
    con = connect(path)
    ingest(con, IngestConfig(classes=CLASSES, sources=[SourceConfig(
        path=str(YOUTUBE_EXAMPLE / "data" / "*.csv"), dataset="youtube",
        columns={"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"})]))
    label(con, LabelingConfig(classes=CLASSES, lfs=[
        {"kind": "keyword", "name": "subscribe", "label": "SPAM", "terms": ["subscribe"], "word_boundary": False},
        {"kind": "regex", "name": "check_out", "label": "SPAM", "pattern": r"check\s+(it\s+)?out", "case_sensitive": False},
        {"kind": "keyword", "name": "song", "label": "HAM", "terms": ["song", "love", "best"]},
        {"kind": "python", "function": f"{YOUTUBE_EXAMPLE / 'lfs.py'}:short_comment"},
    ]), run_id="r")
    detect(con, DetectConfig(C=1.0), run_id="r", label_run="r")  # C fixed: no tuning
    con.close()
    return path


def _export(db: Path, out: Path, **options) -> dict:
    con = connect(db)
    try:
        export(con, ExportConfig(out_dir=str(out), **options), classes=CLASSES, run_id="r", label_run="r", detect_run="r")
    finally:
        con.close()
    return json.loads((out / ".manifest.json").read_text())


def _ids(dataset) -> list[str]:
    return [row["item_id"] for row in dataset]


def test_manifest_describes_the_shards(pipeline_db, tmp_path):
    manifest = _export(pipeline_db, tmp_path / "out", rows_per_shard=97)
    shards = manifest["shards"]
    assert len(shards) == -(-manifest["rows"] // 97) and sum(s["rows"] for s in shards) == manifest["rows"]
    for shard in shards:
        path = tmp_path / "out" / shard["path"]
        assert not Path(shard["path"]).is_absolute()
        assert shard["bytes"] == path.stat().st_size and shard["sha256"] == sha256_file(path)
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    assert sum(manifest["label_distribution"].values()) == manifest["rows"]
    assert manifest["weight_summary"]["min"] >= 0  # per-class balanced weights can exceed 1
    assert [f["name"] for f in manifest["schema"]][:5] == ["item_id", "dataset", "split", "text", "label"]
    # What was left out is recorded with its reason, and adds up.
    con = connect(pipeline_db, read_only=True)
    excluded = dict(con.execute("SELECT reason, count(*) FROM excluded WHERE run_id = 'r' GROUP BY reason").fetchall())
    n_items = con.execute("SELECT count(*) FROM items").fetchall()[0][0]
    con.close()
    assert excluded == manifest["excluded"] and set(excluded) <= {"uncovered", "label_issue"}
    assert manifest["rows"] + sum(excluded.values()) == n_items


@pytest.mark.parametrize("world_size", [1, 3])
def test_every_row_exactly_once_across_ranks(pipeline_db, tmp_path, world_size):
    from thresher.storage.loader import ShardedParquetDataset

    manifest = _export(pipeline_db, tmp_path / "out", rows_per_shard=97)
    seen: Counter = Counter()
    for rank in range(world_size):
        dataset = ShardedParquetDataset(tmp_path / "out", rank=rank, world_size=world_size)
        ids = _ids(dataset)
        assert len(ids) == len(dataset)
        seen.update(ids)
    assert len(seen) == manifest["rows"] and set(seen.values()) == {1}
    con = connect(pipeline_db, read_only=True)
    kept = {r[0] for r in con.execute(
        "SELECT item_id FROM labels WHERE run_id = 'r' EXCEPT SELECT item_id FROM excluded WHERE run_id = 'r'").fetchall()}
    con.close()
    assert set(seen) == kept


@pytest.mark.slow  # two DataLoader worker processes per rank
def test_dataloader_workers_split_a_rank_again(pipeline_db, tmp_path):
    from thresher.storage.loader import ShardedParquetDataset, collate_rows
    from torch.utils.data import DataLoader

    manifest = _export(pipeline_db, tmp_path / "out", rows_per_shard=97)
    seen: Counter = Counter()
    for rank in range(3):
        dataset = ShardedParquetDataset(tmp_path / "out", rank=rank, world_size=3, columns=["item_id", "label", "weight"])
        # forkserver: forking this pytest process after the Prefect test server's threads started
        # kills the workers; a training job is a process of its own and may use plain fork.
        loader = DataLoader(dataset, batch_size=32, num_workers=2, collate_fn=collate_rows,
                            multiprocessing_context="forkserver")
        for batch in loader:
            assert batch["label"].dtype.is_floating_point is False and batch["weight"].shape == batch["label"].shape
            seen.update(batch["item_id"])
    assert len(seen) == manifest["rows"] and set(seen.values()) == {1}


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])  # 2 worker processes: ~10 s
def test_batches_of_columns_match_the_rows_and_shuffle_per_epoch(pipeline_db, tmp_path, workers):
    from thresher.storage.loader import ShardedParquetDataset
    import torch
    from torch.utils.data import DataLoader

    manifest = _export(pipeline_db, tmp_path / "out", rows_per_shard=97)
    rows = {r["item_id"]: r for r in ShardedParquetDataset(tmp_path / "out")}
    orders = []
    for epoch in (0, 0, 1):
        seen: list[str] = []
        for rank in range(2):
            dataset = ShardedParquetDataset(tmp_path / "out", rank=rank, world_size=2, batch_size=50, shuffle=True, seed=3)
            dataset.set_epoch(epoch)
            loader = DataLoader(dataset, batch_size=None, num_workers=workers,
                                multiprocessing_context="forkserver" if workers else None)
            batches = list(loader)
            assert sum(len(b["item_id"]) < 50 for b in batches) <= max(workers, 1)  # each worker's last batch may be short
            for batch in batches:
                assert batch["label"].dtype == torch.long and batch["weight"].dtype == torch.float32
                assert batch["probs"].shape == (len(batch["item_id"]), 2)
                for i, item in enumerate(batch["item_id"]):  # the same values as the row dicts
                    assert batch["label"][i].item() == rows[item]["label"]
                    assert batch["weight"][i].item() == pytest.approx(rows[item]["weight"])
                    assert batch["probs"][i].tolist() == pytest.approx(rows[item]["probs"])
                    assert batch["text"][i] == rows[item]["text"]
                seen += batch["item_id"]
        assert len(seen) == manifest["rows"] == len(set(seen))  # every row once per epoch
        orders.append(seen)
    assert orders[0] == orders[1] != orders[2]  # the same epoch, the same order; the next, another
    with pytest.raises(ValueError, match="batch_size"):
        ShardedParquetDataset(tmp_path / "out", batch_size=0)


@pytest.mark.slow
def test_the_distributed_worker_sees_every_row_once_and_keeps_the_ranks_identical(pipeline_db, tmp_path):
    """examples/train_worker.py under torchrun, two gloo ranks on the CPU, uneven slices (one rank
    takes one step more): every row once per epoch, and the same parameters on both ranks."""
    from thresher.storage.loader import ShardedParquetDataset

    # an export with an odd row count: the two ranks' slices differ by one row
    for drop_issues, drop_uncovered in ((True, True), (False, True), (True, False), (False, False)):
        manifest = _export(pipeline_db, tmp_path / "out", rows_per_shard=97, drop_label_issues=drop_issues,
                           drop_uncovered=drop_uncovered)
        if manifest["rows"] % 2:
            break
    else:
        pytest.fail("no export setting gives an odd row count")
    short = manifest["rows"] // 2
    batch = next(b for b in range(40, short + 1) if short % b == 0)  # rank 1's one extra row is one extra step
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(REPO / "examples" / "train_worker.py"), str(tmp_path / "out"), "--epochs", "2", "--buckets", "4096",
         "--batch-size", str(batch), "--workers", "1", "--trace", str(tmp_path / "trace")],
        capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / "trace" / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    kept = {r["item_id"] for r in ShardedParquetDataset(tmp_path / "out")}
    for epoch in range(2):
        items = [r["epochs"][epoch]["items"] for r in ranks]
        assert len(items[0]) + 1 == len(items[1])
        assert sorted(items[0] + items[1]) == sorted(kept)  # every row, once
        assert ranks[0]["epochs"][epoch]["checksum"] == ranks[1]["epochs"][epoch]["checksum"]
    assert ranks[0]["epochs"][0]["items"] != ranks[0]["epochs"][1]["items"]  # reshuffled per epoch
    assert ranks[0]["epochs"][0]["checksum"] != ranks[0]["epochs"][1]["checksum"]  # and it trained
    assert f"on {manifest['rows']} rows, 2 rank(s)" in done.stdout


READERS = """
import json, sys
import duckdb, pandas as pd, pyarrow.dataset as ds, pyarrow.parquet as pq
import datasets
out = sys.argv[1]
hf = datasets.load_dataset("parquet", data_dir=out, cache_dir=sys.argv[2])["train"]
meta = pq.read_schema(out + "/shard-00000.parquet").metadata
print(json.dumps({
    "pandas": len(pd.read_parquet(out)), "pyarrow": ds.dataset(out).count_rows(),
    "duckdb_glob": duckdb.sql(f"select count(*) from '{out}/*.parquet'").fetchall()[0][0],
    "duckdb_dir": duckdb.sql(f"select count(*) from read_parquet('{out}')").fetchall()[0][0],
    "hf": hf.num_rows, "hf_label": type(hf.features["label"]).__name__, "hf_names": hf.features["label"].names,
    "hf_first": [hf.features["label"].int2str(hf[0]["label"]), hf[0]["label_name"]],
    "thresher_meta": json.loads(meta[b"thresher"]),
    "imported_thresher": any(m == "thresher" or m.startswith("thresher.") for m in sys.modules),
}))
"""


def test_the_export_directory_is_a_dataset_for_pandas_pyarrow_duckdb_and_hugging_face(pipeline_db, tmp_path):
    manifest = _export(pipeline_db, tmp_path / "out", rows_per_shard=97)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", READERS, str(tmp_path / "out"), str(tmp_path / "hf-cache")],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    rows = manifest["rows"]
    assert [seen[k] for k in ("pandas", "pyarrow", "duckdb_glob", "duckdb_dir", "hf")] == [rows] * 5
    assert seen["hf_label"] == "ClassLabel" and seen["hf_names"] == CLASSES
    assert seen["hf_first"][0] == seen["hf_first"][1]  # the ClassLabel's name is the row's label_name
    assert seen["thresher_meta"]["classes"] == CLASSES and not seen["imported_thresher"]


def test_exports_with_the_old_manifest_name_still_load(pipeline_db, tmp_path):
    from thresher.storage.loader import ShardedParquetDataset

    manifest = _export(pipeline_db, tmp_path / "out", rows_per_shard=97)
    (tmp_path / "out" / ".manifest.json").rename(tmp_path / "out" / "manifest.json")  # as written before 2026-12-03
    assert len(_ids(ShardedParquetDataset(tmp_path / "out"))) == manifest["rows"]
    again = _export(pipeline_db, tmp_path / "out", rows_per_shard=97)  # an old export is replaced, not refused
    assert again["rows"] == manifest["rows"] and not (tmp_path / "out" / "manifest.json").exists()


def test_corrupted_or_missing_shard_is_detected(pipeline_db, tmp_path):
    from thresher.storage.loader import ShardedParquetDataset, ShardIntegrityError

    manifest = _export(pipeline_db, tmp_path / "out", rows_per_shard=97)
    victim = tmp_path / "out" / manifest["shards"][1]["path"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(ShardIntegrityError, match="corrupted"):
        _ids(ShardedParquetDataset(tmp_path / "out"))
    # The rank that never touches the bad shard still reads fine.
    last_rank = ShardedParquetDataset(tmp_path / "out", rank=2, world_size=3)
    assert len(_ids(last_rank)) == len(last_rank)
    victim.unlink()
    with pytest.raises(ShardIntegrityError, match="missing"):
        _ids(ShardedParquetDataset(tmp_path / "out"))


def test_the_loader_refuses_shard_paths_outside_the_export(pipeline_db, tmp_path):
    """An edited manifest (with matching checksums) cannot make the loader read another file."""
    from thresher.storage.loader import ShardedParquetDataset
    import os
    import shutil
    from thresher.storage.export import UnsafeShardPath, sha256_file

    manifest = _export(pipeline_db, tmp_path / "out", rows_per_shard=97)
    outside = tmp_path / "elsewhere" / "x.parquet"
    outside.parent.mkdir()
    shutil.copy(tmp_path / "out" / manifest["shards"][0]["path"], outside)
    (tmp_path / "out" / "link.parquet").symlink_to(outside)
    for path in ["../elsewhere/x.parquet", str(outside), "link.parquet", "sub/../../elsewhere/x.parquet"]:
        edited = {**manifest, "shards": [{**manifest["shards"][0], "path": path, "sha256": sha256_file(outside)},
                                         *manifest["shards"][1:]]}
        (tmp_path / "out" / ".manifest.json").write_text(json.dumps(edited))
        with pytest.raises(UnsafeShardPath, match="leaves the export directory"):
            ShardedParquetDataset(tmp_path / "out")
    os.unlink(tmp_path / "out" / "link.parquet")


def test_the_loader_validates_the_manifest_and_catches_a_consistent_tamper(pipeline_db, tmp_path):
    """A manifest is checked field by field (the error names the file and field), a shard listed twice
    is refused, and a label rewritten with its new checksum written into the manifest is caught when
    the loader is given the project database that recorded the export."""
    import pyarrow.compute as pc

    from thresher.storage.export import sha256_file
    from thresher.storage.loader import ManifestError, ShardedParquetDataset, read_manifest

    out = tmp_path / "out"
    manifest = _export(pipeline_db, out, rows_per_shard=97)
    path = out / ".manifest.json"
    original = path.read_text()
    assert len(ShardedParquetDataset(out, db=pipeline_db)) == manifest["rows"]  # the recorded checksum matches

    def refused(edited: str, match: str) -> None:
        path.write_text(edited)
        with pytest.raises(ManifestError, match=match):
            ShardedParquetDataset(out)

    shards = manifest["shards"]
    refused(json.dumps({**manifest, "shards": [shards[0], *shards]}), "listed twice")
    refused(json.dumps({k: v for k, v in manifest.items() if k != "shards"}), "'shards' must be a list")
    refused(json.dumps({**manifest, "shards": [{k: v for k, v in shards[0].items() if k != "sha256"}, *shards[1:]]}),
            r"shards\[0\] has no 'sha256'")
    refused(json.dumps({**manifest, "rows": "many"}), "'rows' must be a whole number")
    refused(json.dumps({**manifest, "rows": manifest["rows"] + 1}), "the shards hold")
    refused(original[: len(original) // 2], "is not valid JSON")

    shard = out / shards[0]["path"]  # the consistent tamper: labels flipped, checksum rewritten
    table = pq.read_table(shard)
    table = table.set_column(table.schema.get_field_index("label"), "label", pc.subtract(1, table.column("label")))
    pq.write_table(table, shard)
    path.write_text(json.dumps({**manifest, "shards": [{**shards[0], "sha256": sha256_file(shard)}, *shards[1:]]}))
    assert len(ShardedParquetDataset(out)) == manifest["rows"]  # consistent: no checksum alone can tell
    with pytest.raises(ManifestError, match="not the .* recorded for this export"):
        ShardedParquetDataset(out, db=pipeline_db)
    copy = tmp_path / "copied"
    copy.mkdir()
    (copy / ".manifest.json").write_text(original)
    with pytest.raises(ManifestError, match="recorded no export"):
        read_manifest(copy, db=pipeline_db)


def test_shards_are_byte_identical_across_exports(pipeline_db, tmp_path):
    first = _export(pipeline_db, tmp_path / "a", rows_per_shard=200)
    second = _export(pipeline_db, tmp_path / "b", rows_per_shard=200)
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]


def test_reexport_replaces_the_directory_and_refuses_foreign_ones(pipeline_db, tmp_path):
    out = tmp_path / "out"
    _export(pipeline_db, out, rows_per_shard=50)
    manifest = _export(pipeline_db, out, rows_per_shard=5000)
    assert sorted(p.name for p in out.iterdir()) == [".manifest.json", "shard-00000.parquet"]
    assert manifest["shards"][0]["rows"] == manifest["rows"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a thresher export"):
        _export(pipeline_db, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not list(tmp_path.glob(".mine.tmp-*"))


def test_reexport_refuses_to_delete_files_the_user_put_beside_an_export(pipeline_db, tmp_path):
    """A re-export replaces the whole directory: a file or folder its manifest does not list makes it
    refuse (naming them), and the previous export and the user's files stay as they were."""
    out = tmp_path / "out"
    first = _export(pipeline_db, out, rows_per_shard=5000)
    (out / "my_notes.txt").write_text("keep me")
    (out / "plots").mkdir()
    with pytest.raises(FileExistsError, match=r"holds files the previous export did not write \(my_notes.txt, plots/\)"):
        _export(pipeline_db, out, rows_per_shard=50)
    assert (out / "my_notes.txt").read_text() == "keep me" and (out / "plots").is_dir()
    assert json.loads((out / ".manifest.json").read_text()) == first
    assert not list(tmp_path.glob(".out.tmp-*"))
    (out / "my_notes.txt").unlink()
    (out / "plots").rmdir()
    assert _export(pipeline_db, out, rows_per_shard=50)["rows"] == first["rows"]


def test_invalid_rank_is_a_clear_error(pipeline_db, tmp_path):
    from thresher.storage.loader import ShardedParquetDataset

    _export(pipeline_db, tmp_path / "out")
    with pytest.raises(ValueError, match="rank must be in"):
        ShardedParquetDataset(tmp_path / "out", rank=3, world_size=3)


def test_shard_files_do_not_depend_on_how_the_rows_arrive(pipeline_db, tmp_path):
    """The export streams rows in batches: shards must be the same bytes whatever the batch sizes,
    with whole 8192-row groups, and hold every kept row once, in item_id order."""
    from thresher.storage.export import _ShardWriter

    manifest = _export(pipeline_db, tmp_path / "ref", rows_per_shard=20_000)
    table = pq.read_table(tmp_path / "ref" / manifest["shards"][0]["path"])
    big = pa.concat_tables([table] * 30)  # more rows than a row group and a shard
    config = ExportConfig(rows_per_shard=20_000)
    files = {}
    for name, size in {"whole": big.num_rows, "odd": 7919, "tiny": 1000}.items():
        (tmp_path / name).mkdir()
        writer = _ShardWriter(tmp_path / name, config, CLASSES)
        for start in range(0, big.num_rows, size):
            writer.write(big.slice(start, size))
        files[name] = writer.close()
    assert files["whole"] == files["odd"] == files["tiny"]
    assert [s["rows"] for s in files["whole"]] == [20_000] * (big.num_rows // 20_000) + [big.num_rows % 20_000]
    first = pq.ParquetFile(tmp_path / "odd" / files["odd"][0]["path"]).metadata
    assert [first.row_group(i).num_rows for i in range(first.num_row_groups)] == [8192, 8192, 3616]
    assert pa.concat_tables(pq.read_table(tmp_path / "tiny" / s["path"]) for s in files["tiny"]).equals(big)


def test_given_labels_export_one_hot_probabilities(tmp_path):
    con = connect(tmp_path / "given.duckdb")
    ingest(con, IngestConfig(classes=CLASSES, sources=[SourceConfig(
        path=str(YOUTUBE_EXAMPLE / "data" / "*.csv"), dataset="youtube",
        columns={"text": "CONTENT", "label": "CLASS", "id": "COMMENT_ID"})]))
    detect(con, DetectConfig(labels_from="given", C=1.0), run_id="g", label_run=None)  # C fixed: no tuning
    export(con, ExportConfig(out_dir=str(tmp_path / "out"), labels_from="given"), classes=CLASSES, run_id="g",
           label_run=None, detect_run="g")
    given = dict(con.execute("SELECT item_id, label FROM items").fetchall())
    con.close()
    rows = pq.read_table(tmp_path / "out" / "shard-00000.parquet").to_pylist()
    assert rows and all(r["label"] == given[r["item_id"]] for r in rows)
    assert all(r["probs"] == [float(k == r["label"]) for k in range(2)] and r["label_name"] == CLASSES[r["label"]]
               for r in rows)
