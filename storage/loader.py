"""Read exported shards in torch training workers: every row exactly once across all ranks.

Rank ``r`` of ``world_size`` gets the contiguous global row range
``[r * N // world_size, (r + 1) * N // world_size)``; DataLoader workers split that range again.
Each shard's sha256 is checked against the manifest before any of its rows is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from thresher.storage.export import FORMAT, MANIFEST, sha256_file, shard_file


class ShardIntegrityError(RuntimeError):
    """A shard is missing, or its bytes do not match the manifest's checksum or row count."""


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Load and check a ``manifest.json`` (a directory holding one is accepted too)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"'{path}' is not a thresher manifest (format {manifest.get('format')!r}).")
    manifest["_root"] = str(path.parent)
    for shard in manifest.get("shards", []):
        shard_file(path.parent, str(shard.get("path", "")))  # refuses absolute and escaping paths
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
    manifest : path to ``manifest.json`` or its directory.
    rank, world_size : this process's place among the training processes.
    columns : columns to read (default: all).
    verify : check each shard's sha256 before reading it (default True).
    """

    def __init__(
        self, manifest: str | Path, *, rank: int = 0, world_size: int = 1,
        columns: list[str] | None = None, verify: bool = True,
    ) -> None:
        self.manifest = read_manifest(manifest)
        self.start, self.stop = rank_range(int(self.manifest["rows"]), rank, world_size)
        self.rank, self.world_size = rank, world_size
        self.columns = columns
        self.verify = verify

    def __len__(self) -> int:
        return self.stop - self.start

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

    def __iter__(self) -> Iterator[dict[str, Any]]:
        start, stop = self.start, self.stop
        info = get_worker_info()
        if info is not None:
            offset, end = rank_range(stop - start, info.id, info.num_workers)
            start, stop = start + offset, start + end
        shard_start = 0
        for shard in self.manifest["shards"]:
            shard_stop = shard_start + int(shard["rows"])
            lo, hi = max(start, shard_start), min(stop, shard_stop)
            if lo < hi:
                table = pq.read_table(self._shard_path(shard), columns=self.columns)
                if table.num_rows != shard["rows"]:
                    raise ShardIntegrityError(f"Shard '{shard['path']}' has {table.num_rows} rows; the manifest says {shard['rows']}.")
                yield from table.slice(lo - shard_start, hi - lo).to_pylist()
            shard_start = shard_stop


def collate_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch rows: numeric columns become tensors, text and ids stay lists."""
    batch: dict[str, Any] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if key in ("label", "gold_label") and all(v is not None for v in values):
            batch[key] = torch.tensor(values, dtype=torch.long)
        elif key in ("weight", "label_quality") and all(v is not None for v in values):
            batch[key] = torch.tensor(values, dtype=torch.float32)
        elif key == "probs":
            batch[key] = torch.tensor(values, dtype=torch.float32)
        else:
            batch[key] = values
    return batch
