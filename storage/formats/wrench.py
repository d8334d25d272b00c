"""WRENCH's JSON: an object keyed by index, each entry ``{"data": {...}, "label": ..., "weak_labels": [...]}``.
Its fields are offered as ``data.<name>`` and the entry's other keys; its votes come with the row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from thresher.storage.formats.base import Counts, FormatReader, Options, Raw, Reject, escape_bytes, whole_json


class Wrench(FormatReader):
    name = "wrench"
    extensions = (".json",)  # when the file is an object; an array is the json format

    def read(self, path: Path, options: Options, counts: Counts) -> Iterator[Raw | Reject]:
        data = whole_json(path, dict, "not a WRENCH JSON file", "a WRENCH file is a JSON object keyed by index")
        if isinstance(data, Reject):
            yield data
            return
        for position, (key, entry) in enumerate(data.items(), start=1):
            line = int(key) if str(key).isdigit() else position
            raw = json.dumps({key: entry}, ensure_ascii=False)
            if not isinstance(entry, dict) or not isinstance(entry.get("data", {}), dict):
                yield Reject(str(path), line, "unparseable", "a WRENCH entry is an object with 'data'", escape_bytes(raw))
                continue
            votes = entry.get("weak_labels")
            if votes is not None and not (isinstance(votes, list) and all(type(v) is int for v in votes)):
                yield Reject(str(path), line, "wrong_type", "'weak_labels' must be a list of ints", escape_bytes(raw))
                continue
            fields = {f"data.{k}": v for k, v in entry.get("data", {}).items()}
            fields.update({k: v for k, v in entry.items() if k not in ("data", "weak_labels")})
            fields["__key__"] = str(key)
            yield Raw(line, fields, raw, votes)
