"""Export the curated set as deterministic zstd Parquet shards plus ``.manifest.json``.

Rows are sorted by ``item_id`` and cut into shards of ``rows_per_shard``; each shard is written
by one writer, so the same data always gives byte-identical shards with stable checksums. The
directory is published atomically: readers see the old export or the new one, never a mix.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

import thresher
from thresher.storage.connection import transaction
from thresher.storage.shards import (  # noqa: F401
    FORMAT, FORMAT_VERSION, MANIFEST, OLD_MANIFEST, UnsafeShardPath, manifest_path, sha256_file, shard_file,
)
from thresher.storage.repo import replace_run_rows
from thresher.core.progress import track
from thresher.core.config import ConfigPath, StageConfig
from thresher.core.stages import Stage, StageContext
from thresher.storage.repo import detector_in_use, input_run, latest_run, run_summary

logger = logging.getLogger(__name__)

# Split names that hold evaluation rows: `export.splits: training` leaves them out.
HELD_OUT_SPLITS = ("test", "testing", "valid", "validation", "val", "dev", "development", "eval", "evaluation",
                   "holdout", "heldout", "held_out", "gold")

SHARD_SCHEMA = pa.schema([
    ("item_id", pa.string()),
    ("dataset", pa.string()),
    ("split", pa.string()),
    ("text", pa.string()),
    ("label", pa.int64()),  # int64: what a Hugging Face ClassLabel is
    ("label_name", pa.string()),
    ("probs", pa.list_(pa.float32())),
    ("weight", pa.float32()),
    ("label_quality", pa.float32()),
    ("gold_label", pa.int32()),
    ("id", pa.string()),  # the id as the source gave it: item_id without its "dataset:" prefix
])


class ExportConfig(StageConfig):
    """Where and how the curated set is written, and which items it keeps."""

    out_dir: ConfigPath = Field("export", validate_default=True)  # the export directory (relative to the config file)
    rows_per_shard: int = Field(100_000, ge=1)  # rows per Parquet shard at most
    # training: every split but the held-out ones (HELD_OUT_SPLITS; items without a split count as
    # training), so evaluation rows never reach the training shards unnoticed; all: every split.
    splits: list[str] | Literal["training", "all"] = "training"
    # Leave out what detect flagged. Off by default: detect's default weight (flagged_quality) keeps
    # flagged items at their label-quality weight, which trained better models than dropping them.
    drop_label_issues: bool = False
    drop_uncovered: bool = True  # leave out undecided items: uncovered, and ties under tie_break: abstain
    labels_from: Literal["denoised", "given"] = "denoised"  # set once at the top level
    # What a training worker should fit, recorded in the manifest (every shard has both columns):
    # hard: `label`; soft: `probs`, the label model's class probabilities, with a soft cross-entropy
    # (Snorkel's noise-aware loss). benchmarks/curation_value.py: soft helps a logistic regression
    # fitted to convergence on rule-labelled sets, and costs the bundled torch worker up to 10 points.
    target: Literal["soft", "hard"] = "hard"
    # Whose weights the shards carry: the detect stage's (label quality, ...) or the reweight
    # stage's (STORM, loss rules). None: reweight when the pipeline config has that stage.
    weights_from: Literal["detect", "reweight"] | None = None
    # Read the latest detect run (its flags and weights). False when the pipeline's `stages` leave
    # detect out: nothing is flagged and every weight is 1 (unless weights_from: reweight).
    use_detect: bool = True
    # Keep only the items the select stage chose (default: true when the pipeline has that stage).
    selected_only: bool = False
    zstd_level: int = Field(3, ge=1, le=22)  # the shards' zstd compression level
    # Score a proxy model trained on the raw labels and on the export against the gold labels of the
    # held-out splits, on at most this many rows of each (0: do not): the summary's `proxy`.
    proxy_rows: int = Field(50_000, ge=0)


@dataclass
class ExportSummary:
    run_id: str
    out_dir: str
    rows: int
    shards: int
    excluded: dict[str, int] = field(default_factory=dict)
    label_distribution: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)  # rows exported per split
    held_out: dict[str, int] = field(default_factory=dict)  # items of the splits left out, per split
    proxy: dict[str, Any] = field(default_factory=dict)  # what curation changed for a proxy model (pipeline layer)
    notes: list[str] = field(default_factory=list)
    reviewed: dict[str, int] = field(default_factory=dict)  # rows labelled by a person's answer; how many it changed

    def as_dict(self) -> dict[str, Any]:
        return {"out_dir": self.out_dir, "rows": self.rows, "shards": self.shards, "splits": self.splits,
                "held_out": self.held_out, "excluded": self.excluded, "label_distribution": self.label_distribution,
                "proxy": self.proxy, "notes": self.notes, "reviewed": self.reviewed}


def exported_splits(config: ExportConfig, splits: list[str | None]) -> list[str | None]:
    """Which of the database's ``splits`` (None: items without one) ``config.splits`` exports."""
    if config.splits == "all":
        return list(splits)
    if config.splits == "training":
        return [s for s in splits if s is None or s.lower() not in HELD_OUT_SPLITS]
    return [s for s in splits if s in config.splits]


def _curated_query(config: ExportConfig, label_run: str | None, detect_run: str | None, detector: str,
                   weight_run: str | None, weight_stage: str | None, select_run: str | None, splits: list[str | None]) -> tuple[str, dict[str, Any]]:
    """Every candidate item with its label, weight and flags, and ``reason``: why it is left out (NULL: kept)."""
    # A reviewed label (the ``reviewed`` view: a person's latest answer) wins, with one-hot probabilities.
    if config.labels_from == "denoised":
        if label_run is None:
            raise ValueError("labels_from='denoised' needs a label run.")
        label_sql = ("JOIN labels l ON l.item_id = i.item_id AND l.run_id = $label_run "
                     "LEFT JOIN reviewed rv ON rv.item_id = i.item_id")
        label_cols = ("coalesce(rv.label, l.label) AS label, CASE WHEN rv.label IS NULL THEN l.probs END AS probs, "
                      "l.covered OR rv.label IS NOT NULL AS covered, l.decided OR rv.label IS NOT NULL AS decided, "
                      "rv.label IS NOT NULL AS reviewed, rv.label IS NOT NULL AND rv.label <> l.label AS review_changed")
    else:
        label_sql = ("JOIN (SELECT i.item_id, coalesce(rv.label, i.label) AS label, rv.label IS NOT NULL AS reviewed, "
                     "rv.label IS NOT NULL AND rv.label IS DISTINCT FROM i.label AS review_changed FROM items i "
                     "LEFT JOIN reviewed rv USING (item_id) WHERE coalesce(rv.label, i.label) IS NOT NULL) l "
                     "ON l.item_id = i.item_id")
        label_cols = ("l.label, NULL::DOUBLE[] AS probs, TRUE AS covered, TRUE AS decided, l.reviewed, "
                      "l.review_changed")
    in_splits = "(list_contains($splits, i.split) OR (i.split IS NULL AND $unsplit))"
    if weight_stage is None:  # no stage weighed the items: every weight is 1
        weight_cols, weight_sql = "1.0::DOUBLE AS weight, 'uniform' AS weight_method", ""
    else:
        weight_cols = "w.weight, w.method AS weight_method"
        weight_sql = "LEFT JOIN weights w ON w.item_id = i.item_id AND w.run_id = $weight_run AND w.stage = $weight_stage"
    reasons = [(True, "NOT in_splits", "held_out_split"),  # export.splits leaves its split out
               (config.selected_only, "NOT selected", "not_selected"),  # outside the select stage's choice
               (config.drop_uncovered, "NOT coalesce(covered, FALSE)", "uncovered"),
               (config.drop_uncovered, "NOT coalesce(decided, FALSE)", "tied"),  # tie_break: abstain
               (config.drop_label_issues, "coalesce(is_issue, FALSE)", "label_issue"),
               (True, "weight IS NULL", "not_weighted")]  # the stage the weights come from did not weigh it
    reason = "CASE " + " ".join(f"WHEN {test} THEN '{name}'" for used, test, name in reasons if used) + " END"
    query = f"""
        SELECT *, {reason} AS reason FROM (
        SELECT i.item_id, i.dataset, i.split, {label_cols}, {weight_cols},
               n.score AS label_quality, n.is_issue, i.gold AS gold_label, coalesce(s.selected, FALSE) AS selected,
               {in_splits} AS in_splits
        FROM items i {label_sql}
        LEFT JOIN selections s ON s.item_id = i.item_id AND s.run_id = $select_run
        {weight_sql}
        LEFT JOIN noise_scores n ON n.item_id = i.item_id AND n.run_id = $detect_run
             AND n.detector = $detector)
    """
    params: dict[str, Any] = {"detect_run": detect_run, "detector": detector, "select_run": select_run}
    if weight_stage is not None:
        params.update(weight_run=weight_run, weight_stage=weight_stage)
    if config.labels_from == "denoised":
        params["label_run"] = label_run
    params.update(splits=[s for s in splits if s is not None], unsplit=None in splits)
    return query, params


def _kept_rows(con: duckdb.DuckDBPyConnection, batch_rows: int = 8 * 8192) -> Iterator[pa.RecordBatch]:
    """The kept rows of ``_export`` with their texts, in item_id order.

    ``_export`` holds no texts: carried through its joins and its sort, 10M rows of texts spill
    to disk under the memory limit. They are joined here, on the sorted rows.
    """
    reader = con.sql("SELECT e.* EXCLUDE (reason), i.text, substr(e.item_id, length(e.dataset) + 2) AS id "
                     "FROM _export e JOIN items i ON i.item_id = e.item_id "
                     "WHERE e.reason IS NULL ORDER BY e.item_id").to_arrow_reader(batch_rows)
    try:
        yield from reader
    finally:
        reader.close()  # DuckDB keeps the result open until its reader is closed


def _selection_info(con: duckdb.DuckDBPyConnection, select_run: str | None) -> dict[str, Any]:
    method, selected, pool = con.execute(
        "SELECT any_value(method), count(*) FILTER (WHERE selected), count(*) FROM selections WHERE run_id = ?",
        [select_run]).fetchall()[0]
    return {"run": select_run, "method": method, "selected": selected, "pool": pool}


def shard_schema(classes: list[str]) -> pa.Schema:
    """The shard schema with its class names as Parquet key-value metadata: ``thresher`` (classes, the
    label column) and ``huggingface`` (the features, ``label`` a ``ClassLabel``), so tools that do not
    know thresher still read the labels by name."""
    def value(dtype: str) -> dict[str, str]:
        return {"dtype": dtype, "_type": "Value"}

    features = {"item_id": value("string"), "dataset": value("string"), "split": value("string"),
                "text": value("string"), "label": {"names": list(classes), "_type": "ClassLabel"},
                "label_name": value("string"), "probs": {"feature": value("float32"), "_type": "Sequence"},  # read by datasets 3 to 5
                "weight": value("float32"), "label_quality": value("float32"), "gold_label": value("int32"),
                "id": value("string")}
    return SHARD_SCHEMA.with_metadata({
        "thresher": json.dumps({"format": FORMAT, "classes": list(classes), "label_column": "label"}),
        "huggingface": json.dumps({"info": {"features": features}}),
    })


def _shard_table(rows: pa.Table | pa.RecordBatch, classes: list[str]) -> pa.Table:
    """Curated rows in the shard schema: class names beside ids, one-hot probabilities where none were learned."""
    K = len(classes)
    labels = rows.column("label").to_numpy(zero_copy_only=False).astype(np.int32)
    probs = rows.column("probs")
    dense = np.eye(K, dtype=np.float32)[labels]
    learned = np.flatnonzero(probs.is_valid().to_numpy(zero_copy_only=False))
    if learned.size:
        values = probs.filter(probs.is_valid())
        lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
        if (lengths != K).any():
            raise ValueError(f"Label probabilities must have one value per class ({K}); got lengths {sorted(set(lengths.tolist()))}.")
        dense[learned] = pc.list_flatten(values).to_numpy(zero_copy_only=False).reshape(-1, K)
    offsets = pa.array(np.arange(0, (len(labels) + 1) * K, K, dtype=np.int32))
    return pa.table({
        "item_id": rows.column("item_id"),
        "dataset": rows.column("dataset"),
        "split": rows.column("split"),
        "text": rows.column("text"),
        "label": pa.array(labels, pa.int64()),
        "label_name": pa.array(classes, pa.string()).take(pa.array(labels)),
        "probs": pa.ListArray.from_arrays(offsets, pa.array(dense.ravel(), pa.float32())),
        "weight": rows.column("weight").cast(pa.float32()),
        "label_quality": rows.column("label_quality").cast(pa.float32()),
        "gold_label": rows.column("gold_label").cast(pa.int32()),
        "id": rows.column("id"),
    }, schema=shard_schema(classes))


class _ShardWriter:
    """Writes kept rows, in item_id order, into shards of ``rows_per_shard`` rows as they come (memory:
    one batch), with the row groups ``pq.write_table`` would make; records each shard for the manifest."""

    def __init__(self, directory: Path, config: ExportConfig, classes: list[str]) -> None:
        self.directory, self.config = directory, config
        self.schema = shard_schema(classes)
        self.row_group = min(config.rows_per_shard, 8192)
        self.shards: list[dict[str, Any]] = []
        self.labels: Counter = Counter()
        self.label_weight: Counter = Counter()  # weight sum per class name
        self.weight = {"min": np.inf, "max": -np.inf, "sum": 0.0}
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._rows = 0  # rows of the open shard, written or pending

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self._writer is None:
                self._open()
            take = min(table.num_rows, self.config.rows_per_shard - self._rows)
            self._add(table.slice(0, take))
            table = table.slice(take)
            if self._rows == self.config.rows_per_shard:
                self._close()

    def close(self) -> list[dict[str, Any]]:
        if self._writer is not None:
            self._close()
        return self.shards

    def abort(self) -> None:
        """Drop the open shard's writer after a failure (its file is removed with the staging directory)."""
        writer, self._writer, self._pending = self._writer, None, []
        if writer is not None:
            try:
                writer.close()
            except Exception:  # a full disk fails the close too; the first error is the one reported
                pass

    def _open(self) -> None:
        name = f"shard-{len(self.shards):05d}.parquet"
        self._writer = pq.ParquetWriter(self.directory / name, self.schema, compression="zstd",
                                        compression_level=self.config.zstd_level, write_statistics=True)
        self.shards.append({"path": name, "rows": 0, "weight_sum": 0.0, "first_item_id": None})

    def _add(self, part: pa.Table) -> None:
        shard = self.shards[-1]
        weights = np.asarray(part.column("weight").to_numpy(zero_copy_only=False), dtype=float)
        shard["rows"] += part.num_rows
        shard["weight_sum"] += float(weights.sum())
        shard["first_item_id"] = shard["first_item_id"] or part.column("item_id")[0].as_py()
        shard["last_item_id"] = part.column("item_id")[-1].as_py()
        names = part.column("label_name").to_pylist()
        self.labels.update(names)
        for name, weight in zip(names, weights):
            self.label_weight[name] += float(weight)
        self.weight = {"min": min(self.weight["min"], float(weights.min())),
                       "max": max(self.weight["max"], float(weights.max())), "sum": self.weight["sum"] + float(weights.sum())}
        self._pending.append(part)
        self._rows += part.num_rows
        buffered = sum(t.num_rows for t in self._pending)
        if buffered >= self.row_group:  # whole row groups only, so the layout does not depend on batch sizes
            pending = pa.concat_tables(self._pending)
            whole = buffered - buffered % self.row_group
            self._writer.write_table(pending.slice(0, whole), row_group_size=self.row_group)
            self._pending = [pending.slice(whole)] if whole < buffered else []

    def _close(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending), row_group_size=self.row_group)
        self._writer.close()
        self._writer, self._pending, self._rows = None, [], 0
        shard = self.shards[-1]
        path = self.directory / shard["path"]
        shard.update({"bytes": path.stat().st_size, "sha256": sha256_file(path)})
        order = ("path", "rows", "bytes", "sha256", "first_item_id", "last_item_id", "weight_sum")
        self.shards[-1] = {key: shard[key] for key in order}


def export(
    con: duckdb.DuckDBPyConnection, config: ExportConfig, *, classes: list[str], run_id: str,
    label_run: str | None, detect_run: str | None, detector: str = "confident_learning",
    weight_run: str | None = None, weight_stage: Literal["detect", "reweight"] | None = "detect",
    select_run: str | None = None, progress: bool = False,
) -> ExportSummary:
    """Write the curated items as shards + manifest to ``config.out_dir``; record exclusions.

    ``detector`` names the noise detector (of the detect run) whose flags exclude items; the
    weights are those ``weight_stage`` wrote in ``weight_run`` (default: the detect run; every weight 1
    when ``weight_stage`` is None). Without a ``detect_run`` nothing is flagged. With
    ``config.selected_only`` only the items the select stage chose in ``select_run`` are kept.
    """
    if config.selected_only and select_run is None:
        raise ValueError("export.selected_only needs a select run: run `thresher select CONFIG` first.")
    _check_replaceable(Path(config.out_dir))
    weight_run = weight_run or detect_run
    per_split = dict(con.sql("SELECT split, count(*) FROM items GROUP BY ALL").fetchall())
    chosen = exported_splits(config, list(per_split))
    held_out = {_split_name(s): n for s, n in sorted(per_split.items(), key=lambda kv: _split_name(kv[0]))
                if s not in chosen}
    if per_split and not chosen:
        raise ValueError(f"export.splits: {config.splits} matches none of the splits ({', '.join(held_out)}): "
                         "list the splits to export (e.g. splits: [train]) or set splits: all.")
    query, params = _curated_query(config, label_run, detect_run, detector, weight_run, weight_stage, select_run,
                                   chosen)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _export AS {query}", params)
    try:
        counts = dict(con.sql("SELECT coalesce(reason, ''), count(*) FROM _export GROUP BY ALL").fetchall())
        n_kept = counts.pop("", 0)
        excluded = dict(sorted(counts.items()))
        if n_kept == 0:
            raise ValueError(f"Nothing to export: all {sum(excluded.values())} candidate items of the splits "
                             f"{sorted(map(_split_name, chosen))} were excluded {Counter(excluded)}.")
        reviewed = dict(zip(("rows", "changed"), con.execute(
            "SELECT count(*) FILTER (reviewed), count(*) FILTER (review_changed) FROM _export WHERE reason IS NULL").fetchall()[0]))
        kept_splits = {_split_name(s): n for s, n in con.sql(
            "SELECT split, count(*) FROM _export WHERE reason IS NULL GROUP BY ALL ORDER BY ALL").fetchall()}
        methods = [m for (m,) in con.sql("SELECT DISTINCT weight_method FROM _export WHERE weight_method IS NOT NULL "
                                         "ORDER BY 1").fetchall()]

        out_dir = Path(config.out_dir)
        remove_stale_staging(out_dir)
        staging = out_dir.with_name(f".{out_dir.name}.tmp-{run_id}")
        staging.mkdir(parents=True)
        writer = _ShardWriter(staging, config, list(classes))
        try:
            batches = _kept_rows(con)
            try:
                for batch in track(batches, description="Writing shards", total=-(-n_kept // (8 * 8192)),
                                   enabled=progress):
                    writer.write(_shard_table(batch, list(classes)))
            finally:
                batches.close()  # the query's result: closed before the connection runs anything else
            shards = writer.close()
            weights = writer.weight
            manifest = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "run_id": run_id,
                "label_run": label_run, "detect_run": detect_run, "detector": detector,
                "weights": {"stage": weight_stage, "run": weight_run, "methods": methods},
                # the column to train on: probs (soft cross-entropy) or label (one-hot probs when labels are given)
                "target": {"kind": config.target, "column": "probs" if config.target == "soft" else "label"},
                "selection": _selection_info(con, select_run) if config.selected_only else None,
                "thresher_version": thresher.__version__,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "classes": list(classes),
                "schema": [{"name": f.name, "type": str(f.type)} for f in SHARD_SCHEMA],
                "rows": n_kept,
                "splits": kept_splits,  # rows per split; the splits left out (export.splits) with their items:
                "held_out": held_out,
                "label_distribution": {c: writer.labels.get(c, 0) for c in classes},
                # each class's share of the rows and of the total weight (detect's weight_balance: per_class keeps them equal)
                "class_shares": {c: {"rows": writer.labels.get(c, 0) / n_kept,
                                     "weight": writer.label_weight.get(c, 0.0) / weights["sum"] if weights["sum"] else 0.0}
                                 for c in classes},
                "weight_summary": {"min": weights["min"], "max": weights["max"],
                                   "mean": weights["sum"] / n_kept, "sum": weights["sum"]},
                "excluded": excluded,
                # rows whose label is a person's answer (reviews), and how many of them it changed
                "reviewed": reviewed,
                "shards": shards,
            }
            for shard in shards:
                shard_file(staging, shard["path"])  # what the loader will accept
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        except BaseException:
            # A full disk, a file-size limit, an I/O error: the real cause goes up, nothing half-written stays.
            writer.abort()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _publish(staging, out_dir, run_id)

        manifest_sha = sha256_file(out_dir / MANIFEST)
        with transaction(con):
            con.execute("DELETE FROM excluded WHERE run_id = ?", [run_id])
            con.execute("INSERT INTO excluded (run_id, item_id, step, reason) SELECT ?, item_id, 'export', reason "
                        "FROM _export WHERE reason IS NOT NULL ORDER BY item_id", [run_id])
            replace_run_rows(con, "exports", run_id, pa.table({
                "run_id": [run_id], "path": [str(out_dir.resolve())], "rows": [n_kept],
                "shards": pa.array([len(shards)], pa.int32()), "manifest_sha256": [manifest_sha],
            }))
    finally:
        con.execute("DROP TABLE IF EXISTS _export")
    summary = ExportSummary(run_id, str(out_dir), n_kept, len(shards), excluded, manifest["label_distribution"],
                            kept_splits, held_out, reviewed=reviewed)
    logger.info("Exported %d rows of %s in %d shards to %s (held out: %s); excluded %s", summary.rows,
                summary.splits, summary.shards, out_dir, summary.held_out or "none", summary.excluded)
    return summary


def _split_name(split: str | None) -> str:
    return "(no split)" if split is None else split


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Remove the staging (``.<name>.tmp-<run>``) and swap (``.<name>.old-<run>``) directories that a
    killed export of ``out_dir`` left; return them.

    An export runs only in the process that holds the database's write lock, so any such
    directory seen then belongs to an export that died before it published. One killed between the
    two renames of the swap left no ``out_dir``: its previous export is put back first.
    """
    if not out_dir.exists():
        previous = sorted((p for p in out_dir.parent.glob(f".{out_dir.name}.old-*") if _is_export(p)),
                          key=lambda p: p.stat().st_mtime)
        if previous:
            os.replace(previous[-1], out_dir)
            logger.warning("Restored the export %s that an interrupted export had moved aside", out_dir)
    stale = sorted(p for pattern in (f".{out_dir.name}.tmp-*", f".{out_dir.name}.old-*")
                   for p in out_dir.parent.glob(pattern) if p.is_dir())
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    if stale:
        logger.warning("Removed %d directories left by an interrupted export: %s", len(stale),
                       ", ".join(p.name for p in stale))
    return stale


def _is_export(path: Path) -> bool:
    """Whether ``path`` holds a readable thresher manifest."""
    try:
        return json.loads(manifest_path(path).read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a directory that holds anything but a thresher export: not an export at all,
    or an export beside files its manifest does not list (a re-export replaces the whole directory,
    so they would be deleted)."""
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if _is_export(out_dir):
        listed = {MANIFEST, OLD_MANIFEST} | {str(shard.get("path")) for shard in
                                             json.loads(manifest_path(out_dir).read_text()).get("shards", [])}
        unknown = sorted(p.name + ("/" if p.is_dir() else "") for p in out_dir.iterdir() if p.name not in listed)
        if unknown:
            shown = ", ".join(unknown[:5]) + (f", ... ({len(unknown)} in all)" if len(unknown) > 5 else "")
            raise FileExistsError(
                f"'{out_dir}' holds files the previous export did not write ({shown}); a re-export replaces the "
                "whole directory and would delete them. Move them out, or choose another out_dir.")
        return
    raise FileExistsError(
        f"'{out_dir}' exists and is not a thresher export (no {MANIFEST} or {OLD_MANIFEST} of format {FORMAT!r}); "
        f"refusing to replace it. Choose another out_dir or empty it."
    )


def _publish(staging: Path, out_dir: Path, run_id: str) -> None:
    """Swap the staged directory into place; the old export is removed only after the swap."""
    old = out_dir.with_name(f".{out_dir.name}.old-{run_id}")
    _check_replaceable(out_dir)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)


class ExportStage(Stage):
    """Registry entry of the export stage: reads the latest detect run, its labels, the weights and the selection."""

    def run(self, con: duckdb.DuckDBPyConnection, context: StageContext) -> ExportSummary:
        config: ExportConfig = context.config
        label_run = None
        if config.use_detect:
            context.input_run_id = detect_run = latest_run(con, "detect")
            if config.labels_from == "denoised":
                label_run = input_run(con, detect_run, "detect")
            weight_stage: Literal["detect", "reweight"] | None = config.weights_from or "detect"
        else:  # the pipeline's stages leave detect out
            detect_run = None
            if config.labels_from == "denoised":
                context.input_run_id = label_run = latest_run(con, "label")
            weight_stage = "reweight" if config.weights_from == "reweight" else None
        weight_run = detect_run if weight_stage == "detect" else latest_run(con, "reweight") if weight_stage else None
        select_run = latest_run(con, "select") if config.selected_only else None
        detector = detector_in_use(con, detect_run) if detect_run else "none"
        notes: list[str] = []
        if detect_run and config.drop_label_issues and not run_summary(con, detect_run, "detect").get("flags_used", True):
            config = config.model_copy(update={"drop_label_issues": False})
            notes.append(f"drop_label_issues ignored: the {detector} flags of detect run {detect_run} failed a sanity "
                         "check (see its warnings; detect.sanity: warn uses them)")
        summary = export(con, config, classes=context.classes, run_id=context.run_id, label_run=label_run,
                         detect_run=detect_run, detector=detector, weight_run=weight_run,
                         weight_stage=weight_stage, select_run=select_run, progress=context.progress)
        summary.notes += notes
        return summary
