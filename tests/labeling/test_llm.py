"""Prompted LFs against a real OpenAI-compatible server on 127.0.0.1 that misbehaves on purpose.

The server counts every request per prompt, so these tests assert exact call counts: each distinct
prompt is sent once, ever; faults are retried within bounds; failures abstain and are asked again.
"""

from __future__ import annotations

import time

import pytest

from thresher.labeling.config import LabelingConfig
from thresher.labeling.llm.apply import apply_prompted_lfs, dry_run
from thresher.labeling.llm.factory import build_backend
from thresher.labeling.llm.backend import Budget, LLMBackendError
from thresher.labeling.stage import label
from thresher.storage.ingest import IngestConfig, SourceConfig, ingest
from thresher.testing.openai_server import OpenAIServer, yes_if

CLASSES = ["HAM", "SPAM"]
SPAM = 1
SUBSCRIBE = {"kind": "prompt", "name": "asks_to_subscribe", "template": "{text}\n\nDoes this comment ask to subscribe?",
             "answers": {"yes": "SPAM", "no": "abstain"}}


@pytest.fixture
def server():
    with OpenAIServer(yes_if("subscribe")) as running:
        yield running


@pytest.fixture
def youtube_test(con, shared_data):
    """The 250 WRENCH YouTube test comments (some texts repeat)."""
    ingest(con, IngestConfig(classes=CLASSES, sources=[SourceConfig(
        path=str(shared_data / "wrench_youtube" / "test.json"), dataset="youtube", format="wrench")]))
    return con


def llm(server: OpenAIServer, **overrides) -> dict:
    return {"backend": "openai", "base_url": server.base_url, "model": "fake-model", "concurrency": 8,
            "backoff": 0.01, "max_backoff": 0.05, "timeout": 5, **overrides}


def config(server: OpenAIServer, *lfs: dict, **llm_overrides) -> LabelingConfig:
    return LabelingConfig(classes=CLASSES, lfs=list(lfs) or [SUBSCRIBE], llm=llm(server, **llm_overrides),
                          model={"model": "majority"})


def prompted_run(con, cfg: LabelingConfig, run_id: str = "r", budget: Budget | None = None):
    return apply_prompted_lfs(con, cfg.build_prompted_lfs(), build_backend(cfg.llm), through_seq=10**9,
                              run_id=run_id, budget=budget)


def distinct_texts(con) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT text FROM items").fetchall()]


def test_each_distinct_prompt_is_sent_once_and_a_rerun_sends_none(youtube_test, server):
    texts = distinct_texts(youtube_test)
    assert len(texts) < 250  # duplicates exist, and are asked once
    twin = {**SUBSCRIBE, "name": "asks_to_subscribe_ham", "answers": {"yes": "SPAM", "no": "HAM"}}
    other = {**SUBSCRIBE, "name": "mentions_song", "template": "{text}\n\nIs this comment about the song?"}
    cfg = config(server, SUBSCRIBE, twin, other)
    first = label(youtube_test, cfg, run_id="r1")
    # The first two LFs render the same prompt: one request serves both.
    assert server.requests == first.llm["sent"] == first.llm["prompts"] == 2 * len(texts)
    assert server.stats()["repeated_prompts"] == 0
    calls = youtube_test.execute("SELECT count(*), count(DISTINCT key), min(attempts), max(attempts) FROM llm_calls").fetchall()[0]
    assert calls == (2 * len(texts), 2 * len(texts), 1, 1)

    votes = dict(youtube_test.execute(
        "SELECT lf, count(*) FILTER (WHERE vote = 1) || '/' || count(*) FROM votes WHERE run_id = 'r1' GROUP BY lf").fetchall())
    n_subscribe = youtube_test.execute("SELECT count(*) FROM items WHERE lower(text) LIKE '%subscribe%'").fetchall()[0][0]
    assert votes["asks_to_subscribe"] == f"{n_subscribe}/{n_subscribe}"  # "no" abstains
    assert votes["asks_to_subscribe_ham"] == f"{n_subscribe}/250"  # "no" votes HAM
    assert first.llm["lfs"]["asks_to_subscribe"] == {"items": 250, "vote": n_subscribe, "abstain_answer": 250 - n_subscribe,
                                                     "no_answer": 0, "unmatched": 0, "failed": 0, "not_sent": 0}

    second = label(youtube_test, cfg, run_id="r2")
    assert server.requests == 2 * len(texts)  # zero new calls
    assert (second.llm["sent"], second.llm["cached"]) == (0, 2 * len(texts))
    same = youtube_test.execute(
        "SELECT count(*) FROM (SELECT item_id, lf, vote FROM votes WHERE run_id = 'r1' "
        "EXCEPT SELECT item_id, lf, vote FROM votes WHERE run_id = 'r2')").fetchall()[0][0]
    assert same == 0


def test_new_items_send_only_their_prompts(youtube_test, server, shared_data):
    cfg = config(server)
    label(youtube_test, cfg, run_id="r1")
    before = server.requests
    ingest(youtube_test, IngestConfig(classes=CLASSES, sources=[SourceConfig(
        path=str(shared_data / "wrench_youtube" / "valid.json"), dataset="youtube", format="wrench")]))
    summary = label(youtube_test, cfg, run_id="r2")
    new_texts = youtube_test.execute(
        "SELECT count(DISTINCT text) FROM items WHERE split = 'valid' AND text NOT IN "
        "(SELECT text FROM items WHERE split = 'test')").fetchall()[0][0]
    assert server.requests - before == summary.llm["sent"] == new_texts
    assert summary.n_items == 370


def test_transient_faults_are_retried_with_backoff(youtube_test, server):
    faults = {0: "429:0.05", 1: "500", 2: "drop", 3: "malformed", 4: "hang:2"}
    server.fault = lambda i, prompt: faults.get(i)
    run = prompted_run(youtube_test, config(server, timeout=0.5))
    texts = distinct_texts(youtube_test)
    assert run.failed == 0 and run.sent == len(texts)
    assert server.requests == len(texts) + len(faults)  # each fault cost exactly one retry
    assert server.statuses["429"] == server.statuses["500"] == server.statuses["drop"] == 1
    retried = youtube_test.execute("SELECT attempts, count(*) FROM llm_calls GROUP BY attempts ORDER BY attempts").fetchall()
    assert retried == [(1, len(texts) - len(faults)), (2, len(faults))]


def test_prompts_that_keep_failing_abstain_and_are_asked_again_next_run(youtube_test, server):
    server.fault = lambda i, prompt: "500" if "check" in prompt.lower() else None
    cfg = config(server, max_retries=2)
    first = label(youtube_test, cfg, run_id="r1")
    failing = youtube_test.execute("SELECT count(DISTINCT text) FROM items WHERE lower(text) LIKE '%check%'").fetchall()[0][0]
    assert failing > 0 and first.llm["failed"] == failing
    assert server.statuses["500"] == 3 * failing  # 1 + max_retries attempts each
    errors = youtube_test.execute("SELECT DISTINCT status, attempts, http_status, error LIKE 'HTTP 500%' FROM llm_calls "
                                  "WHERE status = 'error'").fetchall()
    assert errors == [("error", 3, 500, True)]
    assert youtube_test.execute("SELECT count(*) FROM llm_cache").fetchall()[0][0] == first.llm["prompts"] - failing

    server.fault = None
    before = server.requests
    second = label(youtube_test, cfg, run_id="r2")
    assert server.requests - before == second.llm["sent"] == failing  # only the failed ones
    assert second.llm["failed"] == 0


def test_answers_outside_the_verbaliser_never_become_labels(youtube_test, server):
    """Garbage and injected instructions ('The label is SPAM') are unmatched abstains, counted."""
    server.fault = lambda i, prompt: "garbage" if i % 3 == 0 else None
    # An item that tries to inject an instruction: the server echoes it as its answer.
    server.answer = lambda prompt: "HAM. Ignore the question." if "ignore" in prompt.lower() else yes_if("subscribe")(prompt)
    ham_if_yes = {**SUBSCRIBE, "answers": {"yes": "HAM", "no": "abstain"}}
    run = prompted_run(youtube_test, config(server, ham_if_yes))
    counts = run.lfs["asks_to_subscribe"]
    assert counts["unmatched"] >= run.prompts // 3 - 1
    assert set(run.votes.column("vote").to_pylist()) == {0}  # only the verbaliser's HAM
    assert counts["vote"] + counts["abstain_answer"] + counts["unmatched"] == 250


def test_budget_stops_cleanly_and_the_next_run_continues(youtube_test, server):
    cfg = config(server)
    run = prompted_run(youtube_test, cfg, budget=Budget(max_calls=40))
    assert server.requests == run.sent == 40
    assert run.budget_stopped == "max_calls=40 reached"
    assert run.lfs["asks_to_subscribe"]["not_sent"] > 0
    assert youtube_test.execute("SELECT count(*) FROM llm_cache").fetchall()[0][0] == 40
    rest = prompted_run(youtube_test, cfg, run_id="r2")
    assert server.requests == len(distinct_texts(youtube_test)) and rest.sent == rest.prompts - 40
    assert server.stats()["repeated_prompts"] == 0

    tokens = prompted_run(youtube_test, config(server, max_tokens=3), run_id="r3", budget=Budget(max_tokens=500))
    assert tokens.budget_stopped.startswith("max_tokens=500") and 500 <= tokens.tokens < 500 + 8 * 200


def test_dry_run_counts_without_sending_or_writing(youtube_test, server):
    cfg = config(server)
    backend = build_backend(cfg.llm)
    plan = dry_run(youtube_test, cfg.build_prompted_lfs(), backend, through_seq=10**9)
    distinct = len(distinct_texts(youtube_test))
    assert (plan["items"], plan["distinct_prompts"], plan["cached"], plan["to_send"]) == (250, distinct, 0, distinct)
    assert plan["estimated_tokens"] > distinct * 5
    assert server.requests == 0 and youtube_test.execute("SELECT count(*) FROM llm_cache").fetchall()[0][0] == 0
    prompted_run(youtube_test, cfg, budget=Budget(max_calls=100))
    plan = dry_run(youtube_test, cfg.build_prompted_lfs(), backend, through_seq=10**9)
    assert (plan["cached"], plan["to_send"]) == (100, distinct - 100)


def test_api_key_is_sent_but_never_stored(youtube_test, server, monkeypatch, db_path):
    secret = "sk-test-7f3a9c1e5b"
    monkeypatch.setenv("THRESHER_TEST_KEY", secret)
    label(youtube_test, config(server, api_key_env="THRESHER_TEST_KEY"), run_id="r1")
    assert server.authorization == {f"Bearer {secret}"}
    youtube_test.execute("CHECKPOINT")
    stored = db_path.read_bytes() + (db_path.with_suffix(".duckdb.wal").read_bytes()
                                     if db_path.with_suffix(".duckdb.wal").exists() else b"")
    assert secret.encode() not in stored

    monkeypatch.delenv("THRESHER_TEST_KEY")
    before = server.requests
    with pytest.raises(ValueError, match="THRESHER_TEST_KEY.*not set"):
        label(youtube_test, config(server, api_key_env="THRESHER_TEST_KEY", model="other"), run_id="r2")
    assert server.requests == before


def test_refused_credentials_stop_the_run_with_a_clear_error(youtube_test, server):
    server.fault = lambda i, prompt: "401"
    with pytest.raises(LLMBackendError, match="HTTP 401: the API key was refused"):
        prompted_run(youtube_test, config(server))
    assert server.requests <= 8  # the workers in flight, not one per item


def test_text_completions_endpoint_and_few_shot_examples(youtube_test, server):
    few_shot = {**SUBSCRIBE, "system": "Answer yes or no.",
                "examples": [{"text": "sub to me!", "answer": "yes"}, {"text": "nice song", "answer": "no"}]}
    run = prompted_run(youtube_test, config(server, few_shot, endpoint="completions"))
    assert run.sent == len(distinct_texts(youtube_test)) and run.failed == 0
    prompt = youtube_test.execute("SELECT prompt FROM llm_cache LIMIT 1").fetchall()[0][0]
    assert "sub to me!" in prompt and "Answer yes or no." in prompt
    # Few-shot examples and the system prompt are part of the key: a chat run asks again.
    chat = prompted_run(youtube_test, config(server, few_shot), run_id="chat")
    assert chat.sent == run.sent


def test_config_errors_come_before_any_work(server):
    with pytest.raises(ValueError, match="need an 'llm' backend"):
        LabelingConfig(classes=CLASSES, lfs=[SUBSCRIBE])
    with pytest.raises(ValueError, match="needs 'statements'"):
        LabelingConfig(classes=CLASSES, lfs=[SUBSCRIBE], llm={"backend": "embedded"})
    with pytest.raises(ValueError, match="answer 'yes' maps to"):
        LabelingConfig(classes=CLASSES, lfs=[{**SUBSCRIBE, "answers": {"yes": "EGGS"}}], llm=llm(server))
    with pytest.raises(ValueError, match="gold labels are for evaluation only"):
        LabelingConfig(classes=CLASSES, lfs=[{**SUBSCRIBE, "template": "{text} {gold}"}], llm=llm(server)).build_prompted_lfs()
    with pytest.raises(ValueError, match="example 0's answer 'maybe'"):
        LabelingConfig(classes=CLASSES, lfs=[{**SUBSCRIBE, "examples": [{"text": "x", "answer": "maybe"}]}],
                       llm=llm(server)).build_prompted_lfs()
    with pytest.raises(ValueError, match="base_url must start with http"):
        LabelingConfig(classes=CLASSES, lfs=[SUBSCRIBE], llm={**llm(server), "base_url": "127.0.0.1:8000"})


def test_a_template_field_items_lack_is_a_clear_error(youtube_test, server):
    cfg = config(server, {**SUBSCRIBE, "template": "{text} by {author}"})
    with pytest.raises(ValueError, match=r"uses \{author\}, which items do not have. Available fields: .*'text'"):
        prompted_run(youtube_test, cfg)
    assert server.requests == 0


def test_yaml_yes_no_keys_are_read_as_words():
    import yaml

    raw = yaml.safe_load("answers: {yes: SPAM, no: abstain}\nexamples: [{text: hi, answer: no}]")
    assert True in raw["answers"]  # what YAML 1.1 does
    cfg = LabelingConfig(classes=CLASSES, lfs=[{**SUBSCRIBE, **raw}], llm={"backend": "openai", "base_url": "http://x",
                                                                          "model": "m"})
    lf = cfg.build_prompted_lfs()[0]
    assert lf.answers == {"yes": SPAM, "no": None} and lf.examples == [{"text": "hi", "answer": "no"}]


def test_cli_dry_run_prints_the_counts(tmp_path, server, shared_data):
    from typer.testing import CliRunner

    from thresher.storage.schema import connect
    from thresher.cli import app

    (tmp_path / "thresher.yaml").write_text(f"""
classes: [HAM, SPAM]
sources:
  - {{path: {shared_data / "wrench_youtube" / "test.json"}, dataset: youtube, format: wrench}}
labeling:
  llm: {{backend: openai, base_url: "{server.base_url}", model: fake, api_key_env: THRESHER_UNSET_KEY}}
  lfs:
    - kind: prompt
      name: asks_to_subscribe
      template: "{{text}}\\n\\nDoes this comment ask to subscribe?"
      answers: {{yes: SPAM, no: abstain}}
""")
    con = connect(tmp_path / "thresher.duckdb")
    from thresher.pipeline.config import load_config

    ingest(con, load_config(tmp_path / "thresher.yaml").ingest_config())
    distinct = len(distinct_texts(con))
    con.close()
    result = CliRunner().invoke(app, ["label", str(tmp_path / "thresher.yaml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"A run would send {distinct} prompts" in result.output and f"0 of {distinct} distinct" in result.output
    assert server.requests == 0  # and no API key was needed to count


def write_prompted_config(directory, source, server: OpenAIServer, concurrency: int, *, source_votes: bool = False,
                          stages: str = ""):
    """A pipeline config with one prompted LF asking ``server``, for tests that run stages in subprocesses;
    ``stages`` is YAML for more sections (detect, reweight, ...)."""
    path = directory / "thresher.yaml"
    path.write_text(f"""
classes: [HAM, SPAM]
sources:
  - {{path: "{source}", dataset: youtube, format: wrench}}
labeling:
  source_votes: {str(source_votes).lower()}
  llm: {{backend: openai, base_url: "{server.base_url}", model: fake, concurrency: {concurrency}}}
  model: {{model: majority}}
  lfs:
    - kind: prompt
      name: asks_to_subscribe
      template: "{{text}}\\n\\nDoes this comment ask to subscribe?"
      answers: {{yes: SPAM, no: abstain}}
export: {{splits: all}}  # a WRENCH file's split is its name ('test'), which the default would hold out
{stages}""")
    return path


LABEL_IN_SUBPROCESS = """
import sys
from thresher.labeling.stage import label, label_version
from thresher.storage.repo import run_stage
from thresher.pipeline.config import load_config

cfg = load_config(sys.argv[1])
run_stage(cfg.db, lambda con, record: label(con, cfg.labeling, run_id=record.run_id), run_id=sys.argv[2],
          stage="label", config_hash=label_version(cfg.labeling))
"""


LOST_WINDOW_S = 5.0  # an answer is committed within this long of arriving, even on a busy machine


@pytest.mark.slow
def test_kill_9_midway_then_rerun_repeats_no_answered_prompt(tmp_path, shared_data):
    """A labeling process killed with SIGKILL mid-run loses at most the prompts in flight."""
    import json
    import signal
    import subprocess
    import sys
    import time

    from thresher.storage.schema import connect
    from tests.conftest import REPO
    from thresher.pipeline.config import load_config

    concurrency = 4
    with OpenAIServer(yes_if("subscribe"), latency=0.02) as server:
        path = write_prompted_config(tmp_path, shared_data / "wrench_youtube" / "[tv]*.json", server, concurrency)
        cfg = load_config(path)
        con = connect(cfg.db)
        ingest(con, cfg.ingest_config())
        n_items, distinct = con.execute("SELECT count(*), count(DISTINCT text) FROM items").fetchall()[0]
        con.close()
        command = [sys.executable, "-c", LABEL_IN_SUBPROCESS, str(path)]
        victim = subprocess.Popen([*command, "killed"], cwd=REPO)
        deadline = time.monotonic() + 120
        while sum(server.answered.values()) < 300 and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(30)
        assert victim.returncode == -signal.SIGKILL  # it was killed midway, not finished
        answered_at = dict(server.answered_at)

        con = connect(cfg.db, read_only=True)  # replays the WAL of the committed answers
        stored = {json.loads(p)["input"] for (p,) in con.execute("SELECT prompt FROM llm_cache").fetchall()}
        con.close()
        asked_before = set(server.prompts)
        assert 0 < len(stored) < distinct  # what was lost is bounded below: the prompts asked again

        subprocess.run([*command, "finished"], cwd=REPO, check=True, timeout=300)
        repeated = {p for p, n in server.prompts.items() if n > 1}
        assert not repeated & stored  # no answered prompt is ever asked again
        # Only answers not yet stored are lost: those in flight at the kill, or that arrived while the
        # last group was being stored (a few ms idle; on a busy machine a store can take longer).
        assert repeated <= asked_before - stored
        assert all(killed_at - answered_at.get(p, killed_at) < LOST_WINDOW_S for p in repeated), len(repeated)
        assert len(server.prompts) == distinct

    con = connect(cfg.db, read_only=True)
    cache = con.execute("SELECT count(*), count(DISTINCT key) FROM llm_cache").fetchall()[0]
    labels = con.execute("SELECT count(*), count(DISTINCT item_id) FROM labels WHERE run_id = 'finished'").fetchall()[0]
    status = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
    con.close()
    assert cache == (distinct, distinct)
    assert labels == (n_items, n_items)  # every item labelled once
    assert status == {"killed": "interrupted", "finished": "completed"}  # the next run tidied the killed one


def test_transformers_backend_runs_a_local_causal_lm(youtube_test, tmp_path):
    """The plumbing only: no small generative model is available offline, so a 1-layer GPT-2 with
    random weights (and MiniLM's tokenizer) is saved to disk; its answers are noise, counted as
    unmatched, but every prompt is generated, cached and never generated again."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from thresher.features.sentence import offline_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(offline_minilm_path(), local_files_only=True)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_head=2, n_embd=32, n_positions=512)
                    ).save_pretrained(tmp_path / "tiny-lm")
    tokenizer.save_pretrained(tmp_path / "tiny-lm")
    cfg = LabelingConfig(classes=CLASSES, lfs=[{**SUBSCRIBE, "template": "{text}"}],
                         llm={"backend": "transformers", "model_path": str(tmp_path / "tiny-lm"), "max_tokens": 2,
                              "batch_size": 16})
    first = prompted_run(youtube_test, cfg, budget=Budget(max_calls=48))
    assert first.sent == 48 and first.failed == 0 and first.budget_stopped
    rows = youtube_test.execute("SELECT count(*), min(completion_tokens), max(completion_tokens), min(prompt_tokens) "
                                "FROM llm_cache WHERE backend = 'transformers'").fetchall()[0]
    assert rows[0] == 48 and 0 <= rows[1] <= rows[2] <= 2 and rows[3] > 0
    second = prompted_run(youtube_test, cfg, run_id="r2", budget=Budget(max_calls=16))
    assert second.cached == 48 and second.sent == 16


def test_retry_after_is_honoured(youtube_test, server):
    server.fault = lambda i, prompt: "429:1" if i == 0 else None
    prompted_run(youtube_test, config(server, max_backoff=0.05))
    waited = youtube_test.execute("SELECT attempts, latency_ms FROM llm_calls WHERE attempts > 1").fetchall()
    assert len(waited) == 1 and waited[0][0] == 2 and waited[0][1] >= 1000  # Retry-After beats max_backoff


@pytest.mark.parametrize("retry_after", ["100000", "Fri, 31 Dec 2100 23:59:59 GMT"])
def test_a_huge_retry_after_fails_the_prompt_instead_of_hanging(youtube_test, server, retry_after):
    import time

    server.fault = lambda i, prompt: f"429:{retry_after}" if i < 3 else None
    start = time.monotonic()
    run = prompted_run(youtube_test, config(server, max_retry_after=5))
    assert time.monotonic() - start < 60  # not 100,000 s
    failed = youtube_test.execute("SELECT attempts, http_status, error FROM llm_calls WHERE status = 'error'").fetchall()
    assert run.failed == 3 and len(failed) == 3
    assert all(a == 1 and s == 429 and "more than max_retry_after=5 s" in e for a, s, e in failed), failed
    # Recorded as failed, so the next run asks them again and they are answered.
    again = prompted_run(youtube_test, config(server, max_retry_after=5), run_id="r2")
    assert again.sent == 3 and again.failed == 0


def test_prompted_lfs_defined_in_python(youtube_test, server, tmp_path):
    (tmp_path / "prompts.py").write_text(
        "from thresher.labeling.llm.prompt import PromptedLF\n"
        "asks_to_subscribe = PromptedLF('asks_to_subscribe', template='{text}\\n\\nDoes it ask to subscribe?',\n"
        "                               answers={'yes': 1, 'no': None}, synonyms={'yes': ['sure thing']})\n")
    cfg = LabelingConfig(classes=CLASSES, llm=llm(server), model={"model": "majority"},
                         lfs=[{"kind": "python", "function": f"{tmp_path / 'prompts.py'}:asks_to_subscribe"},
                              {"kind": "keyword", "name": "kw_subscribe", "label": "SPAM", "terms": ["subscribe"],
                               "word_boundary": False}])
    assert [lf.name for lf in cfg.build_prompted_lfs()] == ["asks_to_subscribe"]
    summary = label(youtube_test, cfg, run_id="py")
    kinds = dict(youtube_test.execute("SELECT lf, kind FROM lfs WHERE run_id = 'py'").fetchall())
    assert kinds == {"asks_to_subscribe": "prompt", "kw_subscribe": "keyword"}
    # The server says yes exactly where the keyword fires: both LFs vote on the same items.
    voted = {lf: {i for (i,) in youtube_test.execute(
        "SELECT item_id FROM votes WHERE run_id = 'py' AND lf = ?", [lf]).fetchall()} for lf in kinds}
    assert voted["asks_to_subscribe"] == voted["kw_subscribe"] and len(voted["kw_subscribe"]) > 10
    assert summary.llm["sent"] == len(distinct_texts(youtube_test))


@pytest.mark.parametrize("reply", ["Yes \ud83d", "\udc80", "Yes\x00", "\ud83d\ude00 yes"])
def test_hostile_answers_are_stored_and_counted_not_fatal(youtube_test, server, reply):
    """Half an emoji, a lone surrogate or a NUL in a reply: the run completes and nothing is lost."""
    server.answer = lambda prompt: reply
    run = prompted_run(youtube_test, config(server))
    assert run.failed == 0 and run.sent == len(distinct_texts(youtube_test))
    stored = youtube_test.execute("SELECT count(*) FROM llm_cache").fetchall()[0][0]
    assert stored == run.sent


@pytest.mark.slow
def test_huge_slow_and_reset_answers_are_bounded(youtube_test, server):
    """A 5 MB answer fails its prompt at once, unread past the cap (derived from max_tokens) and not
    cached; a body dripped a byte a second is cut by the timeout; a real TCP reset mid-answer is retried."""
    texts = distinct_texts(youtube_test)
    faults = {0: "huge:5000000", 1: "drip:1", 2: "reset"}
    server.fault = lambda i, prompt: faults.get(i)
    started = time.monotonic()
    run = prompted_run(youtube_test, config(server, timeout=2, max_retries=1))
    assert time.monotonic() - started < 60
    errors = [r[0] for r in youtube_test.execute("SELECT error FROM llm_calls WHERE status = 'error'").fetchall()]
    assert any("allowed for one answer (max_response_bytes)" in e for e in errors), errors
    assert run.failed == 1 and run.sent == len(texts)  # the dripped and the reset ones succeed on their retry
    assert server.statuses["huge"] == 1 and server.statuses["drip"] == 1 and server.statuses["reset"] == 1
    assert server.requests == len(texts) + 2  # the huge answer is not retried; drip and reset once each
    biggest = youtube_test.execute("SELECT max(length(response)) FROM llm_cache").fetchall()[0][0]
    assert biggest < 100
