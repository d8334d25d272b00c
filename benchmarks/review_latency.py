"""How long the review page takes to answer a keypress on a 100k-item project.

The bundled YouTube comments repeated to ``--items`` items (each copy its own id), labelled by keyword
rules; ``thresher review``'s app on a real uvicorn on 127.0.0.1; ``--answers`` answers posted one after
another as the page posts them (each stored in the database before the reply). Reports the queue's
build time and the answer round trip (median, 95th percentile, max).

    .venv/bin/python -m benchmarks.review_latency                 # 100,000 items, 100 answers: about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "youtube" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--answers", type=int, default=100)
    parser.add_argument("--strategy", default="disagreement")
    args = parser.parse_args()

    import thresher
    import uvicorn

    from thresher.pipeline.review_queue import build_queue
    from thresher.review import Session, create_app
    from thresher.storage.schema import connect

    print(f"thresher {thresher.__version__}, duckdb {version('duckdb')}, fastapi {version('fastapi')}, "
          f"uvicorn {version('uvicorn')}, python {platform.python_version()}")
    base = pd.concat([pd.read_csv(p) for p in sorted(EXAMPLE.glob("Youtube0*.csv"))]).drop_duplicates("COMMENT_ID")
    copies = -(-args.items // len(base))
    frame = pd.concat([base.assign(COMMENT_ID=base["COMMENT_ID"] + f"-{k}") for k in range(copies)]).head(args.items)
    with tempfile.TemporaryDirectory() as directory:
        config = {"classes": ["HAM", "SPAM"], "db": str(Path(directory) / "r.duckdb"), "stages": ["ingest", "label"],
                  "labeling": {"model": {"model": "majority"}, "lfs": [
                      {"kind": "keyword", "name": "subscribe", "label": "SPAM", "terms": ["subscribe", "channel"]},
                      {"kind": "keyword", "name": "check", "label": "SPAM", "terms": ["check out", "my"]},
                      {"kind": "keyword", "name": "song", "label": "HAM", "terms": ["song", "love"]},
                      {"kind": "regex", "name": "link", "label": "SPAM", "pattern": "https?://"}]}}
        started = time.perf_counter()
        thresher.Pipeline(config, data=frame, columns={"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"},
                          dataset="youtube", split="train").run()
        print(f"{len(frame):,} items ingested and labelled in {time.perf_counter() - started:.1f} s")
        con = connect(config["db"], read_only=True)
        started = time.perf_counter()
        queue = build_queue(con, ["HAM", "SPAM"], strategy=args.strategy, limit=max(500, args.answers), reviewer="bench")
        con.close()
        print(f"queue ({args.strategy}, {len(queue.items)} items) built in {time.perf_counter() - started:.2f} s")
        session = Session(config["db"], queue, "bench")
        server = uvicorn.Server(uvicorn.Config(create_app(session), host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not (server.started and server.servers):
            time.sleep(0.05)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

        def post(path: str, body: dict) -> dict:
            request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST", headers={
                "Content-Type": "application/json", "X-Review-Token": session.token})
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())

        state = session.state()
        timings = []
        for k in range(min(args.answers, len(queue.items))):
            started = time.perf_counter()
            state = post("/api/answer", {"item_id": state["item"]["item_id"], "label": k % 2})
            timings.append((time.perf_counter() - started) * 1000)
        server.should_exit = True
        thread.join(timeout=30)
        timings.sort()
        print(f"answer round trip over {len(timings)} answers (stored before the reply): median "
              f"{statistics.median(timings):.1f} ms, p95 {timings[int(0.95 * (len(timings) - 1))]:.1f} ms, "
              f"max {timings[-1]:.1f} ms")


if __name__ == "__main__":
    main()
