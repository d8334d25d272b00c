"""`thresher review`: the queue each strategy builds, and the page served by a real uvicorn on 127.0.0.1,
driven over HTTP and with the keyboard in headless Chromium (Chrome's DevTools protocol)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import YOUTUBE_EXAMPLE

CLASSES = ["HAM", "SPAM"]
LFS = [{"kind": "keyword", "name": "subscribe", "label": "SPAM", "terms": ["subscribe", "channel"]},
       {"kind": "keyword", "name": "check", "label": "SPAM", "terms": ["check out", "my"]},
       {"kind": "keyword", "name": "song", "label": "HAM", "terms": ["song", "love"]},
       {"kind": "regex", "name": "link", "label": "SPAM", "pattern": "https?://"}]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Two videos' comments, labelled by keyword rules, checked by confident learning."""
    import thresher

    root = tmp_path_factory.mktemp("review")
    frame = pd.concat([pd.read_csv(YOUTUBE_EXAMPLE / "data" / f) for f in ("Youtube01-Psy.csv", "Youtube02-KatyPerry.csv")])
    config = {"classes": CLASSES, "db": str(root / "r.duckdb"), "stages": ["ingest", "label", "detect"],
              "detect": {"C": 10.0, "detectors": {"small_loss": {"rule": "gmm", "threshold": 0.5}, "confident_learning": {}},
                         "sanity": "warn"},
              "labeling": {"model": {"model": "majority"}, "lfs": LFS}}
    pipe = thresher.Pipeline(config, data=frame, columns={"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"},
                             dataset="youtube", split="train")
    pipe.run()
    return pipe


def _queue(pipe, strategy, **kwargs):
    from thresher.pipeline.review_queue import build_queue
    from thresher.storage.schema import connect

    con = connect(pipe.config.db, read_only=True)
    try:
        return build_queue(con, CLASSES, strategy=strategy, **kwargs)
    finally:
        con.close()


def test_each_strategy_orders_the_items_it_says(project):
    queues = {s: _queue(project, s, limit=50) for s in ("disagreement", "flagged", "low_confidence", "conflict", "random")}
    assert all(len(q.items) >= 5 for q in queues.values()), {s: len(q.items) for s, q in queues.items()}
    disagreement = queues["disagreement"]
    assert disagreement.items and all(len(set(i.models.values())) > 1 for i in disagreement.items)
    flagged = queues["flagged"]
    scores = [i.detectors["small_loss"]["score"] for i in flagged.items]  # the detector in use: the first listed
    assert all(i.detectors["small_loss"]["flagged"] for i in flagged.items) and scores == sorted(scores)
    low = queues["low_confidence"]
    confidence = project.sql("select item_id, confidence from labelled").set_index("item_id")["confidence"]
    assert list(confidence[[i.item_id for i in low.items]]) == sorted(confidence[[i.item_id for i in low.items]])
    conflict = queues["conflict"]
    assert all(any(v != i.label for v in i.votes.values()) for i in conflict.items)
    labels = [i.label for i in queues["random"].items[:40]]
    assert abs(labels.count(0) - labels.count(1)) <= 1  # stratified: the classes alternate
    with pytest.raises(ValueError, match="strategy must be one of"):
        _queue(project, "loudest")


@pytest.fixture
def server(project):
    """The review app over a flagged queue, on a real uvicorn bound to 127.0.0.1 (any free port)."""
    import uvicorn

    from thresher.review import Session, create_app

    session = Session(project.config.db, _queue(project, "flagged", reviewer="ana"), "ana")
    app = uvicorn.Server(uvicorn.Config(create_app(session), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=app.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not (app.started and app.servers):
        assert time.monotonic() < deadline and thread.is_alive(), "the review server did not start"
        time.sleep(0.05)
    port = app.servers[0].sockets[0].getsockname()[1]
    yield session, f"http://127.0.0.1:{port}"
    app.should_exit = True
    thread.join(timeout=30)
    from thresher.storage.reviews import _write

    _write(project.config.db, lambda con: con.execute("DELETE FROM reviews"))


def _call(url: str, token: str | None, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json", **({"X-Review-Token": token} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_page_stores_each_answer_at_once_and_refuses_a_wrong_token(project, server):
    session, base = server
    assert _call(f"{base}/api/state", None)[0] == 403
    assert _call(f"{base}/api/state", "not-the-token")[0] == 403
    assert _call(f"{base}/?token=wrong", None)[0] == 403
    status, state = _call(f"{base}/api/state", session.token)
    assert status == 200 and state["planned"] == len(session.queue.items) > 3 and state["item"]["why"].startswith("flagged by")
    first, timings = state["item"]["item_id"], []
    for label in (1, None):  # an answer, then "unsure"
        started = time.perf_counter()
        status, state = _call(f"{base}/api/answer", session.token, {"item_id": state["item"]["item_id"], "label": label})
        timings.append(time.perf_counter() - started)
        assert status == 200
    status, state = _call(f"{base}/api/answer", session.token, {"item_id": state["item"]["item_id"], "skip": True})
    assert state["position"] == 3 and state["reviewed"] == 2
    assert project.sql(f"select label from reviews where item_id = '{first}' and reviewer = 'ana'")["label"].tolist() == [1]
    assert _call(f"{base}/api/answer", session.token, {"item_id": first, "label": 0})[0] == 409  # not the item on the page
    assert _call(f"{base}/api/answer", session.token, {"item_id": state["item"]["item_id"], "label": 7})[0] == 409
    _call(f"{base}/api/undo", session.token, {})  # the skip
    status, state = _call(f"{base}/api/undo", session.token, {})  # the "unsure"
    assert state["position"] == 1 and state["reviewed"] == 1 and len(project.sql("select * from reviews")) == 1
    assert max(timings) < 2.0  # stored before the page moves on (measured: ~45 ms; the benchmark times it)


def chromium() -> str | None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None and os.environ.get("THRESHER_REQUIRE_CHROMIUM"):
        pytest.fail("THRESHER_REQUIRE_CHROMIUM is set but chromium is not installed")
    return binary


@pytest.mark.slow
def test_a_person_answers_with_the_keyboard_in_a_real_browser(project, server, tmp_path):
    """Headless Chromium opens the printed URL, presses 2 (SPAM), 1 (HAM), s (skip), z (undo the skip)
    and reloads: the answers are in the database and the page resumes where it was."""
    binary = chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    from websockets.sync.client import connect as ws_connect

    session, base = server
    browser = subprocess.Popen([binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                f"--user-data-dir={tmp_path / 'profile'}", "--remote-debugging-port=0",
                                f"{base}/?token={session.token}"], stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 120
        while port is None and time.monotonic() < deadline:
            line = browser.stderr.readline()
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = found and int(found.group(1))
        assert port, "chromium did not start its DevTools endpoint"
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        page = next(t for t in targets if t["type"] == "page")
        with ws_connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=60) as ws:
            counter = iter(range(1, 10_000))

            def send(method: str, **params) -> dict:
                number = next(counter)
                ws.send(json.dumps({"id": number, "method": method, "params": params}))
                while True:
                    message = json.loads(ws.recv(timeout=60))
                    if message.get("id") == number:
                        return message.get("result", {})

            def body(attribute: str) -> str:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    value = send("Runtime.evaluate", expression=f"document.body.dataset.{attribute} || ''",
                                 returnByValue=True)["result"].get("value", "")
                    if value:
                        return value
                    time.sleep(0.1)
                raise AssertionError(f"the page never set {attribute}")

            def press(key: str) -> None:
                before = body("position") + "/" + body("reviewed")
                send("Input.dispatchKeyEvent", type="keyDown", key=key, text=key)
                send("Input.dispatchKeyEvent", type="keyUp", key=key)
                deadline = time.monotonic() + 60
                while body("position") + "/" + body("reviewed") == before:
                    assert time.monotonic() < deadline, f"key {key!r} changed nothing"
                    time.sleep(0.05)

            first = body("item")
            press("2")
            second = body("item")
            press("1")
            press("s")
            press("z")
            assert body("position") == "2" and body("item") != second
            send("Page.reload")
            time.sleep(0.5)
            assert body("position") == "2" and body("reviewed") == "2"  # the server keeps the session's place
    finally:
        browser.kill()
        browser.wait(timeout=30)
    answers = dict(project.sql("select item_id, label from reviews where reviewer = 'ana'").values.tolist())
    assert answers == {first: 1, second: 0}
    assert Path(project.config.db).exists()


def test_answers_choose_the_label_model_of_auto_and_a_change_reruns_the_label_stage(tmp_path):
    """A simulated reviewer (answers from gold) on 30 comments the label models disagree on: model auto
    then scores its candidates on those answers and keeps the most accurate; new answers rerun the label
    stage (its LF votes come from the cache), unchanged ones reuse it."""
    import thresher
    from thresher.storage.reviews import import_answers

    frame = pd.concat([pd.read_csv(YOUTUBE_EXAMPLE / "data" / f) for f in ("Youtube01-Psy.csv", "Youtube02-KatyPerry.csv")])
    config = {"classes": CLASSES, "db": str(tmp_path / "a.duckdb"), "stages": ["ingest", "label"],
              "labeling": {"model": {"model": "auto", "min_reviews": 20}, "lfs": LFS}}
    pipe = thresher.Pipeline(config, data=frame, columns={"text": "CONTENT", "gold": "CLASS", "id": "COMMENT_ID"},
                             dataset="youtube", split="train")
    first = pipe.run().summaries["label"]
    assert first["reviews"]["used"] == 0 and "heldout_agreement" in first["selection"][0]  # no answers: vote agreement
    from thresher.storage.schema import connect

    con = connect(pipe.config.db, read_only=True)
    try:
        from thresher.pipeline.review_queue import build_queue

        queue = build_queue(con, CLASSES, strategy="disagreement", limit=30)
    finally:
        con.close()
    answers = tmp_path / "answers.csv"
    answers.write_text("item_id,label\n" + "".join(f"{i.item_id},{i.gold}\n" for i in queue.items))
    assert import_answers(pipe.config.db, answers, CLASSES, reviewer="sim").stored == 30
    second = pipe.run().summaries["label"]
    assert not second.get("cached") and second["reviews"]["used"] == 30
    scores = {entry["model"]: entry["dev_accuracy"] for entry in second["selection"]}
    assert second["model"]["model"] in scores and scores[second["model"]["model"]] == max(scores.values())
    assert pipe.run().summaries["label"]["cached"]  # the same answers: the run is reused
    answers.write_text("item_id,label\n" + f"{queue.items[0].item_id},{1 - queue.items[0].gold}\n")
    import_answers(pipe.config.db, answers, CLASSES, reviewer="sim")
    assert not pipe.run().summaries["label"].get("cached")  # an answer changed: chosen again


def test_detect_judges_each_detectors_flags_by_the_answers(project, tmp_path):
    from thresher.storage.reviews import _write, import_answers

    flagged = _queue(project, "flagged", limit=12)
    answers = tmp_path / "answers.csv"
    answers.write_text("item_id,label\n" + "".join(f"{i.item_id},{i.gold}\n" for i in flagged.items))
    try:
        assert import_answers(project.config.db, answers, CLASSES, reviewer="sim").stored == len(flagged.items) == 12
        summary = project.run_stage("detect", force=True)
        judged = summary["detectors"]["small_loss"]["reviewed"]
        right = sum(i.gold != i.label for i in flagged.items)
        assert judged["answered"] == judged["flagged"] == 12 and judged["right"] == right
        assert judged["precision"] == pytest.approx(right / 12)
        assert summary["detectors"]["confident_learning"]["reviewed"]["answered"] == 12
    finally:
        _write(project.config.db, lambda con: con.execute("DELETE FROM reviews"))


@pytest.mark.slow
def test_the_review_command_prints_its_url_serves_the_page_and_stops_on_ctrl_c(project, tmp_path):
    import signal
    import sys

    import yaml

    config = tmp_path / "thresher.yaml"
    config.write_text(yaml.safe_dump(project.config.model_dump(mode="json")))
    command = [sys.executable, "-m", "thresher.cli", "review", str(config), "--port", "0", "--reviewer", "cli",
               "--strategy", "random", "--limit", "5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 180  # a busy machine: no short start-up limit
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line or process.poll() is None, process.stderr.read()[-2000:]
            found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
            url = found and (found.group(1), found.group(2))
        assert url, "no URL printed"
        base, token = url
        assert _call(f"{base}/api/state", None)[0] == 403
        status, state = _call(f"{base}/api/state", token)
        assert status == 200 and state["planned"] == 5 and state["reviewer"] == "cli"
        status, page = 0, ""
        with urllib.request.urlopen(f"{base}/?token={token}", timeout=30) as response:
            status, page = response.status, response.read().decode()
        assert status == 200 and "thresher review" in page
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
        assert "answers stored" in rest, (process.returncode, rest, errors[-3000:])
    finally:
        if process.poll() is None:
            process.kill()
