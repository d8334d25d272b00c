"""Serving a flow for ``thresher deploy`` so that stopping it stops its schedule, whatever the signal.

Prefect's ``Flow.serve`` pauses the deployment's schedule when the serving process gets Ctrl-C, but
its SIGTERM handler (what ``kill``, systemd and container runtimes send) calls an async stop without
awaiting it and exits: the schedule stays active and the server keeps creating runs nothing
executes. Here SIGTERM takes the Ctrl-C path, so the schedule is paused either way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import Flow
from prefect.runner import Runner


class _Runner(Runner):
    def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # leave as Ctrl-C does: the runner's exit pauses the schedule


def serve(flow: Flow, *, name: str, **options: Any) -> str:
    """Register ``flow`` as deployment ``name`` (``options`` as ``Runner.add_flow`` takes them) and execute
    its runs until Ctrl-C or SIGTERM; return the deployment's full name once its schedule is paused."""
    runner = _Runner(name=name, pause_on_shutdown=True)
    runner.add_flow(flow, name=name, **options)
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        pass
    return f"{flow.name}/{name}"
