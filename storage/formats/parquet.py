"""Parquet, read a batch at a time. Ingest reads flat Parquet files column-wise instead
(``storage.ingest``'s fast path); this reader gives their rows one by one, and every other file's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from thresher.storage.formats.base import Counts, FormatReader, Options, Raw, Reject


def parquet_file(path: Path) -> pq.ParquetFile:
    """A Parquet file read a few MB at a time. pyarrow's default (``pre_buffer``) keeps the raw bytes
    of every row group read so far until the reader is closed: a whole 10M-row file (1.8 GB) by its end."""
    return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)


class Parquet(FormatReader):
    name = "parquet"
    extensions = (".parquet", ".pq")

    def read(self, path: Path, options: Options, counts: Counts) -> Iterator[Raw | Reject]:
        number = 0
        for batch in parquet_file(path).iter_batches(batch_size=65536):
            for row in batch.to_pylist():
                number += 1
                yield Raw(number, row, json.dumps(row, default=str, ensure_ascii=False))

    def columns(self, path: Path, options: Options) -> set[str]:
        """The schema's names, nested struct fields dotted (no row is read)."""
        names: set[str] = set()

        def walk(fields: list[pa.Field], prefix: str) -> None:
            for field in fields:
                names.add(prefix + field.name)
                if pa.types.is_struct(field.type):
                    walk([field.type.field(i) for i in range(field.type.num_fields)], f"{prefix}{field.name}.")

        walk(list(pq.read_schema(path)), "")
        return names
