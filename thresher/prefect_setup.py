"""How the CLI sets Prefect up: quiet terminal, full logs on the server, patient start-up, clear errors.

Prefect's loggers stay at INFO, so every stage summary reaches the flow run's logs on the server
(the UI's Logs tab); only Prefect's console handler is raised to CRITICAL, so a failed run prints
thresher's one ``error:`` line instead of Prefect's repeated tracebacks (``--debug`` shows them).
thresher's own warnings still print, as ``warning: ...`` lines.
The temporary server that Prefect starts when no ``PREFECT_API_URL`` is set gets 10 minutes to
come up instead of Prefect's 20 s, which a busy 2-core laptop can exceed. Every value is a
default: a variable the user set wins.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import urllib.error
import urllib.request

EPHEMERAL_STARTUP_TIMEOUT = "600"  # seconds; measured 167-175 s with CPU-bound jobs beside it on 2 cores
HEALTH_TIMEOUT = 60.0  # seconds a running server may take to answer its health check
# thresher's own library loggers, sent to the flow run's logs on the server beside Prefect's.
OWN_LOGGERS = "thresher"  # every module logs under thresher.*


def configure(*, debug: bool = False) -> None:
    """Set Prefect's environment for one thresher command (before Prefect is imported)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_TIMEOUT)
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", OWN_LOGGERS)
    if debug:
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "DEBUG"
        os.environ["PREFECT_LOGGING_LEVEL"] = "DEBUG"
        return
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    # thresher's own warnings (a lock waited for, an interrupted run tidied) still reach the terminal.
    handler = _Stderr()
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    for name in OWN_LOGGERS.split(","):
        logger = logging.getLogger(name)
        if not any(getattr(h, "_thresher", False) for h in logger.handlers):
            handler._thresher = True  # type: ignore[attr-defined]
            logger.addHandler(handler)


class _Stderr(logging.Handler):
    """A handler writing to whatever ``sys.stderr`` is when a record comes (a test may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def api_url() -> str | None:
    """The Prefect API that flows will report to: ``PREFECT_API_URL`` or the active profile's."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def check_api(url: str, *, timeout: float = HEALTH_TIMEOUT) -> None:
    """Raise a one-line ``ConnectionError`` unless the Prefect server at ``url`` answers its health check."""
    advice = ("Start it (`prefect server start`), fix PREFECT_API_URL, or unset PREFECT_API_URL to run with a "
              "temporary local server.")
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            healthy = json.loads(response.read() or b"null") is True
    except urllib.error.HTTPError as exc:
        raise ConnectionError(f"The Prefect API at PREFECT_API_URL={url} answered HTTP {exc.code} to its health "
                              f"check: is it a Prefect server's /api address? {advice}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"No Prefect server answers at PREFECT_API_URL={url} ({reason}). {advice}") from None
    if not healthy:
        raise ConnectionError(f"The Prefect server at PREFECT_API_URL={url} is not healthy. {advice}")


def explain(exc: BaseException) -> str | None:
    """The one-line message for a Prefect start-up or connection failure, or None for other errors."""
    text = str(exc)
    if isinstance(exc, RuntimeError) and "ephemeral Prefect API server" in text:
        timeout = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_TIMEOUT)
        return (f"The temporary Prefect server did not start within {timeout} s (a busy machine?). Raise "
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start one yourself (`prefect server start`) "
                "and set PREFECT_API_URL.")
    if type(exc).__name__ in ("ConnectError", "ConnectTimeout", "PrefectHTTPStatusError") or "Cannot connect" in text:
        return (f"Lost the Prefect API ({type(exc).__name__}: {text.splitlines()[0] if text else ''}). Is the server "
                "at PREFECT_API_URL still running?")
    return None
