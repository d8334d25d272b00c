"""JSON Lines: one JSON object per line (``.jsonl``, ``.ndjson``), read line by line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from thresher.storage.formats.base import Counts, FormatReader, Options, Raw, Reject


class JsonLines(FormatReader):
    name = "jsonl"
    extensions = (".jsonl", ".ndjson")

    def read(self, path: Path, options: Options, counts: Counts) -> Iterator[Raw | Reject]:
        with path.open("rb") as handle:
            for number, line_bytes in enumerate(handle, start=1):
                if number == 1 and line_bytes.startswith(b"\xef\xbb\xbf"):
                    line_bytes = line_bytes[3:]
                try:
                    line = line_bytes.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield Reject(str(path), number, "invalid_utf8", str(exc), line_bytes.decode("utf-8", "backslashreplace"))
                    continue
                if not line.strip():
                    counts.blank_lines += 1
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield Reject(str(path), number, "unparseable", f"JSON error: {exc}", line)
                    continue
                if not isinstance(obj, dict):
                    yield Reject(str(path), number, "unparseable", f"expected a JSON object, got {type(obj).__name__}", line)
                    continue
                yield Raw(number, obj, line.rstrip("\r\n"))
