"""A JSON array of row objects (what ``pandas.DataFrame.to_json(orient="records")`` and many dataset
dumps write); element i is line i. A ``.json`` file is this format when it starts with ``[``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from thresher.storage.formats.base import Counts, FormatReader, Options, Raw, Reject, escape_bytes, whole_json


class JsonArray(FormatReader):
    """The whole file is parsed at once: for files larger than memory use JSONL, read line by line."""

    name = "json"

    def read(self, path: Path, options: Options, counts: Counts) -> Iterator[Raw | Reject]:
        data = whole_json(path, list, "not a JSON array", "expected a JSON array of objects")
        if isinstance(data, Reject):
            yield data
            return
        for number, obj in enumerate(data, start=1):
            raw = escape_bytes(json.dumps(obj, ensure_ascii=False))
            if not isinstance(obj, dict):
                yield Reject(str(path), number, "unparseable", f"expected a JSON object, got {type(obj).__name__}", raw)
                continue
            yield Raw(number, obj, raw)


def starts_with_array(path: Path) -> bool:
    """Whether a ``.json`` file holds a JSON array (of row objects) rather than a WRENCH object."""
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")
