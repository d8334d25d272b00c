"""Where the shared datasets are: ``THRESHER_SHARED_DATA``, else ``../shared/data`` beside the repository
(as the tests find them)."""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("THRESHER_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
