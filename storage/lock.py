"""Waiting for the project database: DuckDB admits one writing process, or readers, never both.

A stage that finds the file held (a ``thresher sql`` query, a notebook's read-only connection,
another pipeline) waits for it, polling, up to a bounded timeout, instead of failing at once.
When the wait times out the error names the process that holds the lock (DuckDB gives its PID).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600.0  # seconds; the config's db_lock_timeout and THRESHER_DB_LOCK_TIMEOUT override it
_POLL = 0.25


class DatabaseLockedError(RuntimeError):
    """The project database stayed held by another process for longer than the lock timeout."""


def is_lock_conflict(exc: BaseException) -> bool:
    """Whether a DuckDB error means another process holds the file's lock."""
    text = str(exc)
    return isinstance(exc, duckdb.IOException) and ("Could not set lock" in text or "Conflicting lock" in text)


def lock_holder(exc: BaseException) -> str:
    """The process named in a DuckDB lock error, with its command line when this machine can read it.

    >>> lock_holder(RuntimeError("Conflicting lock is held in /usr/bin/python3.11 (PID 4242) by user x."))
    'PID 4242 (/usr/bin/python3.11)'
    """
    text = str(exc)
    match = re.search(r"held in (.+?) \(PID (\d+)\)", text)
    if not match:
        return "another process"
    program, pid = match.group(1), match.group(2)
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return f"PID {pid} ({command[:200] or program})"


def lock_timeout(configured: float | None = None) -> float:
    """The lock timeout in seconds: ``THRESHER_DB_LOCK_TIMEOUT`` if set, else ``configured``, else 600."""
    value = os.environ.get("THRESHER_DB_LOCK_TIMEOUT")
    if value:
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError(f"THRESHER_DB_LOCK_TIMEOUT must be a number of seconds. Got {value!r} instead.") from None
        if seconds < 0:
            raise ValueError(f"THRESHER_DB_LOCK_TIMEOUT must be >= 0. Got {value!r} instead.")
        return seconds
    return DEFAULT_TIMEOUT if configured is None else float(configured)


def wait_for(open_db: Callable[[], duckdb.DuckDBPyConnection], db: str | Path, *, timeout: float,
             purpose: str = "write", progress: bool = False) -> duckdb.DuckDBPyConnection:
    """``open_db()``, retried while another process holds ``db``'s lock, for at most ``timeout`` seconds.

    Waits are logged (once, with the holder) and drawn as a spinner on stderr with ``progress``.
    """
    start = time.monotonic()
    status = None
    try:
        while True:
            try:
                return open_db()
            except duckdb.IOException as exc:
                if not is_lock_conflict(exc):
                    raise
                waited = time.monotonic() - start
                holder = lock_holder(exc)
                if waited >= timeout:
                    raise DatabaseLockedError(
                        f"'{db}' is held by {holder}; waited {waited:.0f} s to {purpose} it (the lock timeout). "
                        "Let that process finish or stop it, or raise db_lock_timeout in the config "
                        "(or THRESHER_DB_LOCK_TIMEOUT)."
                    ) from None
                if status is None:
                    logger.warning("'%s' is held by %s; waiting up to %.0f s to %s it", db, holder, timeout, purpose)
                    if progress:
                        from rich.console import Console

                        status = Console(stderr=True).status(f"waiting for '{db}' (held by {holder})")
                        status.start()
                time.sleep(_POLL)
    finally:
        if status is not None:
            status.stop()
