"""Read exported shards in torch training workers: every row exactly once across all ranks.

Rank ``r`` of ``world_size`` gets the contiguous global row range
``[r * N // world_size, (r + 1) * N // world_size)``; DataLoader workers split that range again.
Each shard's sha256 is checked against the manifest before any of its rows is used.

Rows come one dict at a time (with :func:`collate_rows` as the DataLoader's ``collate_fn``) or, with
``batch_size``, as ready batches of columns (``DataLoader(dataset, batch_size=None)``): numeric
columns become tensors straight from Arrow, about two orders of magnitude faster than row dicts.
``shuffle`` permutes the order of a rank's shard pieces and of the rows within them, per epoch
(:meth:`ShardedParquetDataset.set_epoch`), without changing which rows the rank owns.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from thresher.storage.shards import FORMAT, manifest_path, sha256_file, shard_file


class ShardIntegrityError(RuntimeError):
    """A shard is missing, or its bytes do not match the manifest's checksum or row count."""


class ManifestError(ValueError):
    """A manifest thresher cannot trust: unreadable, a field missing or of the wrong type, a shard listed
    twice, rows that do not add up, or a checksum other than the one the project database recorded."""


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _check_manifest(manifest: Any, where: Path) -> None:
    """Every field the loader reads is present and of its type; each shard once; rows add up."""
    def bad(what: str) -> ManifestError:
        return ManifestError(f"Manifest '{where}': {what}.")

    if not isinstance(manifest, dict):
        raise bad(f"expected a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != FORMAT:
        raise bad(f"not a thresher manifest (format {manifest.get('format')!r}, expected {FORMAT!r})")
    rows, shards = manifest.get("rows"), manifest.get("shards")
    if type(rows) is not int or rows < 0:
        raise bad(f"'rows' must be a whole number >= 0, got {rows!r}")
    if not isinstance(shards, list):
        raise bad(f"'shards' must be a list of shards, got {'nothing' if shards is None else type(shards).__name__}")
    seen: set[str] = set()
    for i, shard in enumerate(shards):
        if not isinstance(shard, dict):
            raise bad(f"shards[{i}] must be an object, got {type(shard).__name__}")
        for field, valid, kind in (("path", lambda v: isinstance(v, str) and v != "", "a file name"),
                                   ("rows", lambda v: type(v) is int and v >= 0, "a whole number >= 0"),
                                   ("sha256", lambda v: isinstance(v, str) and _SHA256.fullmatch(v), "64 hex digits")):
            if field not in shard:
                raise bad(f"shards[{i}] has no '{field}'")
            if not valid(shard[field]):
                raise bad(f"shards[{i}].{field} must be {kind}, got {shard[field]!r}")
        if shard["path"] in seen:
            raise bad(f"the shard '{shard['path']}' is listed twice (its rows would be read twice)")
        seen.add(shard["path"])
    if sum(shard["rows"] for shard in shards) != rows:
        raise bad(f"the shards hold {sum(shard['rows'] for shard in shards)} rows, 'rows' says {rows}")


def recorded_manifest_sha256(db: str | Path, export_dir: str | Path) -> str:
    """The checksum of the manifest the project database ``db`` recorded for its latest export to
    ``export_dir`` (read-only; DuckDB is imported only here)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT manifest_sha256 FROM exports WHERE path = ? ORDER BY run_id DESC LIMIT 1",
                          [str(Path(export_dir).resolve())]).fetchone()
    finally:
        con.close()
    if row is None:
        raise ManifestError(f"The database '{db}' recorded no export to '{Path(export_dir).resolve()}'.")
    return str(row[0])


def read_manifest(path: str | Path, *, expected_sha256: str | None = None, db: str | Path | None = None) -> dict[str, Any]:
    """Load and check an export's manifest: its path, or the export directory (``.manifest.json``, or
    ``manifest.json`` in exports written before that name).

    Every field the loader uses is checked (:class:`ManifestError` names the file and field). A
    manifest can be rewritten consistently (shard edited, its new checksum written in): give
    ``expected_sha256``, or the project database ``db`` that recorded the export, and the manifest's
    own checksum must match it."""
    path = Path(path)
    if path.is_dir():
        path = manifest_path(path)
    data = path.read_bytes()
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise ManifestError(f"Manifest '{path}' is not valid JSON (truncated or edited?): {exc}") from None
    _check_manifest(manifest, path)
    if db is not None and expected_sha256 is None:
        expected_sha256 = recorded_manifest_sha256(db, path.parent)
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ManifestError(f"Manifest '{path}' has sha256 {hashlib.sha256(data).hexdigest()}, not the "
                            f"{expected_sha256} recorded for this export: it was changed after the export wrote it.")
    manifest["_root"] = str(path.parent)
    for shard in manifest["shards"]:
        shard_file(path.parent, shard["path"])  # refuses absolute and escaping paths
    return manifest


def rank_range(n_rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """The half-open global row range owned by ``rank``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size) with world_size >= 1. Got rank={rank}, world_size={world_size}.")
    return rank * n_rows // world_size, (rank + 1) * n_rows // world_size


class ShardedParquetDataset(IterableDataset):
    """Iterate the rows (dicts) of an export for one distributed rank.

    Parameters
    ----------
    manifest : the export directory, or the path of its manifest.
    rank, world_size : this process's place among the training processes.
    columns : columns to read (default: all).
    verify : check each shard's sha256 before reading it (default True).
    batch_size : yield batches of this many rows (the last may be smaller) as column dicts, not rows.
    shuffle, seed : permute pieces and rows per epoch, from ``seed`` and the epoch (``set_epoch``).
    manifest_sha256, db : the manifest must have this checksum, or the one the project database ``db``
        recorded for this export (catches a manifest rewritten together with a shard).
    """

    def __init__(
        self, manifest: str | Path, *, rank: int = 0, world_size: int = 1,
        columns: list[str] | None = None, verify: bool = True, batch_size: int | None = None,
        shuffle: bool = False, seed: int = 0, manifest_sha256: str | None = None, db: str | Path | None = None,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (or None for rows). Got {batch_size} instead.")
        self.manifest = read_manifest(manifest, expected_sha256=manifest_sha256, db=db)
        self.start, self.stop = rank_range(int(self.manifest["rows"]), rank, world_size)
        self.rank, self.world_size = rank, world_size
        self.columns = columns
        self.verify = verify
        self.batch_size = batch_size
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def __len__(self) -> int:
        """Rows of this rank (batches are ``ceil(len / batch_size)`` per DataLoader worker range)."""
        return self.stop - self.start

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose shuffle to use (call before iterating, as with DistributedSampler)."""
        self.epoch = epoch

    def _shard_path(self, shard: dict[str, Any]) -> Path:
        path = shard_file(self.manifest["_root"], shard["path"])
        if not path.is_file():
            raise ShardIntegrityError(f"Shard '{path}' listed in the manifest is missing.")
        if self.verify:
            actual = sha256_file(path)
            if actual != shard["sha256"]:
                raise ShardIntegrityError(
                    f"Shard '{path}' is corrupted: sha256 {actual} does not match the manifest's {shard['sha256']}."
                )
        return path

    def _pieces(self) -> Iterator[pa.Table]:
        """This rank's (and DataLoader worker's) rows, one table per shard it overlaps."""
        start, stop = self.start, self.stop
        info = get_worker_info()
        worker = 0
        if info is not None:
            offset, end = rank_range(stop - start, info.id, info.num_workers)
            start, stop, worker = start + offset, start + end, info.id
        spans, shard_start = [], 0
        for shard in self.manifest["shards"]:
            shard_stop = shard_start + int(shard["rows"])
            lo, hi = max(start, shard_start), min(stop, shard_stop)
            if lo < hi:
                spans.append((shard, lo - shard_start, hi - lo))
            shard_start = shard_stop
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker]) if self.shuffle else None
        if rng is not None:
            spans = [spans[i] for i in rng.permutation(len(spans))]
        for shard, offset, length in spans:
            table = pq.read_table(self._shard_path(shard), columns=self.columns)
            if table.num_rows != shard["rows"]:
                raise ShardIntegrityError(f"Shard '{shard['path']}' has {table.num_rows} rows; the manifest says {shard['rows']}.")
            piece = table.slice(offset, length)
            yield piece.take(rng.permutation(length)) if rng is not None else piece

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.batch_size is None:
            for piece in self._pieces():
                yield from piece.to_pylist()
            return
        pending: list[pa.Table] = []
        held = 0
        for piece in self._pieces():
            pending.append(piece)
            held += piece.num_rows
            while held >= self.batch_size:
                table = pa.concat_tables(pending)
                yield columns_to_batch(table.slice(0, self.batch_size))
                rest = table.slice(self.batch_size)
                pending, held = [rest], rest.num_rows
        if held:
            yield columns_to_batch(pa.concat_tables(pending))


_LONG = ("label", "gold_label")
_FLOAT = ("weight", "label_quality")


def columns_to_batch(table: pa.Table) -> dict[str, Any]:
    """A batch from a table: label, weight (etc.) and probs columns without nulls become tensors
    (zero-copy from Arrow where the types allow), other columns Python lists; as :func:`collate_rows`."""
    batch: dict[str, Any] = {}
    for name in table.column_names:
        column = table.column(name)
        if name in _LONG + _FLOAT and column.null_count == 0:
            dtype = np.int64 if name in _LONG else np.float32
            batch[name] = torch.from_numpy(column.to_numpy().astype(dtype))
        elif name == "probs" and column.null_count == 0 and len(column):
            flat = pa.concat_arrays([chunk.flatten() for chunk in column.chunks]).to_numpy()
            batch[name] = torch.from_numpy(flat.astype(np.float32).reshape(len(column), -1))
        else:
            batch[name] = column.to_pylist()
    return batch


def collate_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch rows: numeric columns become tensors, text and ids stay lists."""
    batch: dict[str, Any] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if key in _LONG and all(v is not None for v in values):
            batch[key] = torch.tensor(values, dtype=torch.long)
        elif key in _FLOAT and all(v is not None for v in values):
            batch[key] = torch.tensor(values, dtype=torch.float32)
        elif key == "probs":
            batch[key] = torch.tensor(values, dtype=torch.float32)
        else:
            batch[key] = values
    return batch
