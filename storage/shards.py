"""The export's on-disk format: the manifest's name and format tag, shard checksums, and the rule
that keeps a manifest's shard paths inside the export. Light on purpose (no DuckDB): training
workers import it through the loader.

The manifest is ``.manifest.json``: pandas, pyarrow, DuckDB (``read_parquet('export')``) and Hugging
Face ``load_dataset("parquet", data_dir=...)`` skip hidden files, so they read the export directory
as the dataset it is. Exports written before that have ``manifest.json``; both are read."""

from __future__ import annotations

import hashlib
from pathlib import Path

MANIFEST = ".manifest.json"
OLD_MANIFEST = "manifest.json"  # exports written before 2026-12-03
FORMAT = "thresher-shards"
FORMAT_VERSION = 3  # 2: label int64 (was int32), class names in the Parquet metadata, .manifest.json; 3: id


def manifest_path(directory: str | Path) -> Path:
    """The manifest of the export at ``directory``: ``.manifest.json``, or an older export's ``manifest.json``."""
    directory = Path(directory)
    current = directory / MANIFEST
    return current if current.exists() or not (directory / OLD_MANIFEST).exists() else directory / OLD_MANIFEST


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class UnsafeShardPath(ValueError):
    """A manifest names a shard outside its export directory (absolute, ``..``, or through a symlink)."""


def shard_file(root: str | Path, name: str) -> Path:
    """The shard ``name`` of the export at ``root``, refusing any path that leaves ``root``.

    A manifest is data, and whoever can edit it can also set the checksum: so a shard path must be
    relative, without ``..``, and resolve (symlinks followed) to a file inside the export directory.

    >>> shard_file("/data/export", "shard-00000.parquet").name
    'shard-00000.parquet'
    >>> shard_file("/data/export", "../../etc/x.parquet")
    Traceback (most recent call last):
    ...
    thresher.storage.shards.UnsafeShardPath: The manifest's shard path '../../etc/x.parquet' leaves the export directory '/data/export'; shard paths must be relative names inside it.
    """
    base = Path(root)
    path = Path(name)
    inside = (not path.is_absolute() and ".." not in path.parts and name.strip() != ""
              and "\0" not in name and (base / path).resolve().is_relative_to(base.resolve()))
    if not inside:
        raise UnsafeShardPath(f"The manifest's shard path {name!r} leaves the export directory '{base}'; "
                              "shard paths must be relative names inside it.")
    return base / path
