"""The versioned DuckDB schema of a thresher project database, and how to open one.

One database file per project holds every stage's output, keyed by ``(run_id, item_id)``, so
that each stage can be queried with SQL and joined with the items it describes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb

from thresher.core.memory import trim_heap
from thresher.storage.connection import transaction

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 11

def _rebuilt_without_key(tables: dict[str, str]) -> str:
    """SQL that rebuilds each table with the given columns (and no key), keeping its rows."""
    return "\n".join(
        f"CREATE TABLE {name}_rebuilt ({columns}); INSERT INTO {name}_rebuilt SELECT * FROM {name}; "
        f"DROP TABLE {name}; ALTER TABLE {name}_rebuilt RENAME TO {name};"
        for name, columns in tables.items())


# Each entry upgrades the schema from version i to i + 1. Never edit a released entry: append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE items (
        item_id      VARCHAR PRIMARY KEY,
        item_seq     BIGINT NOT NULL,   -- 1, 2, ... in ingest order; items are never rewritten
        dataset      VARCHAR NOT NULL,
        split        VARCHAR,
        text         VARCHAR NOT NULL,
        label        INTEGER,          -- given (possibly noisy) label, class id
        gold         INTEGER,          -- trusted label for evaluation only, class id
        extra        JSON,             -- every other source column, kept as-is
        source       VARCHAR NOT NULL, -- file the row came from
        source_line  BIGINT,           -- 1-based line (CSV/JSONL), row (Parquet) or key (WRENCH)
        content_hash VARCHAR NOT NULL,  -- sha256 of text, labels and extra: detects conflicting ids
        ingested_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE rejects (
        source       VARCHAR NOT NULL,
        line         BIGINT NOT NULL,
        reason       VARCHAR NOT NULL,
        detail       VARCHAR,
        raw          VARCHAR,
        first_seen   TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (source, line)
    );
    CREATE TABLE source_votes (
        item_id      VARCHAR NOT NULL,
        lf           VARCHAR NOT NULL,
        vote         INTEGER NOT NULL,
        PRIMARY KEY (item_id, lf)
    );
    CREATE TABLE runs (
        run_id       VARCHAR NOT NULL,
        stage        VARCHAR NOT NULL,
        config_hash  VARCHAR NOT NULL,
        started_at   TIMESTAMP NOT NULL,
        ended_at     TIMESTAMP,
        status       VARCHAR NOT NULL,  -- running | completed | failed
        flow_run_id  VARCHAR,
        input_run_id VARCHAR,           -- the upstream run whose output this stage read
        summary      JSON,
        error        VARCHAR,
        PRIMARY KEY (run_id, stage)
    );
    CREATE TABLE lfs (
        run_id       VARCHAR NOT NULL,
        lf           VARCHAR NOT NULL,
        kind         VARCHAR NOT NULL,
        version      VARCHAR NOT NULL,  -- hash of the definition; keys the vote cache
        definition   VARCHAR NOT NULL,
        through_seq  BIGINT NOT NULL,   -- the run saw the items with item_seq <= through_seq
        PRIMARY KEY (run_id, lf)
    );
    CREATE TABLE lf_votes (             -- vote cache: non-abstain votes of one LF version
        version      VARCHAR NOT NULL,  -- unique per (version, item_id): rows are written in the
        item_id      VARCHAR NOT NULL,  -- same transaction as lf_progress, only past its watermark
        vote         INTEGER NOT NULL   -- (no index: it would cost more than the LFs themselves)
    );
    CREATE TABLE lf_progress (          -- LF version evaluated on every item with item_seq <= through_seq
        version      VARCHAR PRIMARY KEY,
        lf           VARCHAR NOT NULL,
        through_seq  BIGINT NOT NULL
    );
    CREATE VIEW votes AS                -- non-abstain votes of each label run
        SELECT l.run_id, v.item_id, l.lf, v.vote
        FROM lfs l JOIN lf_votes v ON v.version = l.version
        JOIN items i ON i.item_id = v.item_id AND i.item_seq <= l.through_seq
        UNION ALL
        SELECT l.run_id, s.item_id, l.lf, s.vote
        FROM lfs l JOIN source_votes s ON s.lf = l.lf AND l.kind = 'imported'
        JOIN items i ON i.item_id = s.item_id AND i.item_seq <= l.through_seq;
    CREATE TABLE lf_summary (
        run_id       VARCHAR NOT NULL,
        lf           VARCHAR NOT NULL,
        polarity     INTEGER[] NOT NULL,
        coverage     DOUBLE NOT NULL,
        "overlaps"   DOUBLE NOT NULL,
        conflicts    DOUBLE NOT NULL,
        correct      BIGINT,
        incorrect    BIGINT,
        emp_accuracy DOUBLE,
        learned_accuracy DOUBLE,        -- the LabelModel's estimate (NULL for majority vote)
        PRIMARY KEY (run_id, lf)
    );
    CREATE TABLE labels (
        run_id       VARCHAR NOT NULL,
        item_id      VARCHAR NOT NULL,
        label        INTEGER NOT NULL,  -- argmax of probs
        probs        DOUBLE[] NOT NULL,
        confidence   DOUBLE NOT NULL,
        entropy      DOUBLE NOT NULL,
        covered      BOOLEAN NOT NULL,  -- at least one LF voted
        PRIMARY KEY (run_id, item_id)
    );
    CREATE TABLE embeddings (           -- vectors computed once per (encoder, item)
        encoder      VARCHAR NOT NULL,
        item_id      VARCHAR NOT NULL,
        vector       FLOAT[] NOT NULL,
        PRIMARY KEY (encoder, item_id)
    );
    CREATE TABLE noise_scores (
        run_id       VARCHAR NOT NULL,
        item_id      VARCHAR NOT NULL,
        detector     VARCHAR NOT NULL,
        score        DOUBLE NOT NULL,   -- in [0, 1]; lower means more likely mislabelled
        is_issue     BOOLEAN NOT NULL,
        PRIMARY KEY (run_id, item_id, detector)
    );
    CREATE TABLE weights (
        run_id       VARCHAR NOT NULL,
        item_id      VARCHAR NOT NULL,
        method       VARCHAR NOT NULL,
        weight       DOUBLE NOT NULL,
        PRIMARY KEY (run_id, item_id)
    );
    CREATE TABLE excluded (
        run_id       VARCHAR NOT NULL,
        item_id      VARCHAR NOT NULL,
        step         VARCHAR NOT NULL,
        reason       VARCHAR NOT NULL,
        PRIMARY KEY (run_id, item_id)
    );
    CREATE TABLE exports (
        run_id       VARCHAR PRIMARY KEY,
        path         VARCHAR NOT NULL,
        rows         BIGINT NOT NULL,
        shards       INTEGER NOT NULL,
        manifest_sha256 VARCHAR NOT NULL
    );
    """,
    # 2: weights from more than one stage per run (detect, reweight), with the flag and the
    # trajectory summary of weights learned during training.
    """
    CREATE TABLE weights_v2 (
        run_id       VARCHAR NOT NULL,
        stage        VARCHAR NOT NULL,  -- detect | reweight
        item_id      VARCHAR NOT NULL,
        method       VARCHAR NOT NULL,  -- label_quality, ..., storm, linupper, uniform
        weight       DOUBLE NOT NULL,   -- the final weight the export uses
        flagged      BOOLEAN NOT NULL,  -- weight < 0.5
        weight_first DOUBLE,            -- trajectory over training epochs (reweight only)
        weight_mean  DOUBLE,
        weight_min   DOUBLE,
        weight_max   DOUBLE,
        epochs_flagged INTEGER,         -- epochs that ended with the weight < 0.5
        PRIMARY KEY (run_id, stage, item_id)
    );
    INSERT INTO weights_v2 (run_id, stage, item_id, method, weight, flagged)
        SELECT run_id, 'detect', item_id, method, weight, weight < 0.5 FROM weights;
    DROP TABLE weights;
    ALTER TABLE weights_v2 RENAME TO weights;
    """,
    # 3: the select stage's choice of training subset towards a target set.
    """
    CREATE TABLE selections (
        run_id       VARCHAR NOT NULL,
        item_id      VARCHAR NOT NULL,  -- every pool item of the run, selected or not
        method       VARCHAR NOT NULL,  -- color_filter | gio | random
        score        DOUBLE,            -- higher = more useful for the target; NULL if the method has none
        selected     BOOLEAN NOT NULL,
        rank         INTEGER,           -- 1 = best (CoLoR-Filter) or chosen first (GIO); NULL if not selected
        PRIMARY KEY (run_id, item_id)
    );
    """,
    # 4: LLM-prompted LFs: the response cache (every prompt answered once), a record of every
    # call made, and each run's prompted votes (derived from the cache, so stored per run).
    """
    CREATE TABLE llm_cache (
        key          VARCHAR PRIMARY KEY, -- sha256 of (backend, model, decoding, rendered prompt)
        backend      VARCHAR NOT NULL,  -- openai | embedded | transformers
        model        VARCHAR NOT NULL,
        prompt       VARCHAR NOT NULL,  -- the rendered prompt (JSON), never the API key
        response     VARCHAR NOT NULL,  -- the raw answer text
        prompt_tokens     INTEGER,      -- as reported by the server (NULL if not)
        completion_tokens INTEGER,
        created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE llm_calls (            -- one row per prompt sent to a backend (cache misses only)
        run_id       VARCHAR NOT NULL,
        key          VARCHAR NOT NULL,
        lf           VARCHAR NOT NULL,  -- the first LF that asked it
        status       VARCHAR NOT NULL,  -- ok | error
        attempts     INTEGER NOT NULL,  -- 1 + retries
        http_status  INTEGER,           -- of the last attempt (NULL: no HTTP, or no response)
        latency_ms   DOUBLE NOT NULL,   -- from the first attempt to the answer, backoff included
        prompt_tokens     INTEGER,
        completion_tokens INTEGER,
        error        VARCHAR,           -- the last attempt's error (status error)
        finished_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE prompt_votes (         -- non-abstain votes of prompted LFs, per label run
        run_id       VARCHAR NOT NULL,
        item_id      VARCHAR NOT NULL,
        lf           VARCHAR NOT NULL,
        vote         INTEGER NOT NULL,
        PRIMARY KEY (run_id, item_id, lf)
    );
    CREATE OR REPLACE VIEW votes AS     -- non-abstain votes of each label run
        SELECT l.run_id, v.item_id, l.lf, v.vote
        FROM lfs l JOIN lf_votes v ON v.version = l.version
        JOIN items i ON i.item_id = v.item_id AND i.item_seq <= l.through_seq
        UNION ALL
        SELECT l.run_id, s.item_id, l.lf, s.vote
        FROM lfs l JOIN source_votes s ON s.lf = l.lf AND l.kind = 'imported'
        JOIN items i ON i.item_id = s.item_id AND i.item_seq <= l.through_seq
        UNION ALL
        SELECT run_id, item_id, lf, vote FROM prompt_votes;
    """,
    # 5: one row per item with everything the pipeline decided about it, from the latest completed
    # run of each stage: what `thresher sql` users join by hand otherwise.
    """
    CREATE VIEW latest_runs AS          -- the most recent completed run of each stage
        SELECT stage, arg_max(run_id, ended_at) AS run_id, max(ended_at) AS ended_at
        FROM runs WHERE status = 'completed' GROUP BY stage;
    CREATE VIEW curated AS
        WITH lr AS (SELECT * FROM latest_runs),
        detector AS (
            SELECT coalesce(r.summary->>'use', 'confident_learning') AS name FROM runs r
            JOIN lr ON lr.run_id = r.run_id AND lr.stage = r.stage WHERE r.stage = 'detect'
        )
        SELECT
            i.item_id, i.dataset, i.split, i.text,
            i.label AS given_label,
            l.label AS denoised_label,
            coalesce(l.label, i.label) AS final_label, -- denoised when a label run exists
            l.confidence, l.covered,
            n.is_issue AS flagged, n.score AS noise_score, n.detector,
            coalesce(wr.weight, wd.weight) AS weight,
            CASE WHEN wr.weight IS NOT NULL THEN 'reweight' WHEN wd.weight IS NOT NULL THEN 'detect' END AS weight_from,
            s.selected, s.rank AS selection_rank,
            x.reason AS excluded_reason,      -- why the latest export left it out (NULL: not excluded)
            i.gold                            -- for evaluation only
        FROM items i
        LEFT JOIN labels l ON l.item_id = i.item_id
            AND l.run_id = (SELECT run_id FROM lr WHERE stage = 'label')
        LEFT JOIN noise_scores n ON n.item_id = i.item_id
            AND n.run_id = (SELECT run_id FROM lr WHERE stage = 'detect')
            AND n.detector = (SELECT name FROM detector)
        LEFT JOIN weights wd ON wd.item_id = i.item_id AND wd.stage = 'detect'
            AND wd.run_id = (SELECT run_id FROM lr WHERE stage = 'detect')
        LEFT JOIN weights wr ON wr.item_id = i.item_id AND wr.stage = 'reweight'
            AND wr.run_id = (SELECT run_id FROM lr WHERE stage = 'reweight')
        LEFT JOIN selections s ON s.item_id = i.item_id
            AND s.run_id = (SELECT run_id FROM lr WHERE stage = 'select')
        LEFT JOIN excluded x ON x.item_id = i.item_id
            AND x.run_id = (SELECT run_id FROM lr WHERE stage = 'export');
    """,
    # 6: no primary keys on the tables with a row per item (and run): an index must be held in
    # memory to insert, so it grew with the rows (about 90 MB per million item ids). Every writer
    # keeps the keys unique itself: ingest resolves repeated ids in SQL before inserting, and the
    # stages replace a run's rows whole (delete, then insert one row per item).
    _rebuilt_without_key({
        "items": """item_id VARCHAR NOT NULL, item_seq BIGINT NOT NULL, dataset VARCHAR NOT NULL, split VARCHAR,
                    text VARCHAR NOT NULL, label INTEGER, gold INTEGER, extra JSON, source VARCHAR NOT NULL,
                    source_line BIGINT, content_hash VARCHAR NOT NULL,
                    ingested_at TIMESTAMP NOT NULL DEFAULT current_timestamp""",
        "labels": """run_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, label INTEGER NOT NULL, probs DOUBLE[] NOT NULL,
                     confidence DOUBLE NOT NULL, entropy DOUBLE NOT NULL, covered BOOLEAN NOT NULL""",
        "embeddings": "encoder VARCHAR NOT NULL, item_id VARCHAR NOT NULL, vector FLOAT[] NOT NULL",
        "noise_scores": """run_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, detector VARCHAR NOT NULL,
                           score DOUBLE NOT NULL, is_issue BOOLEAN NOT NULL""",
        "weights": """run_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, item_id VARCHAR NOT NULL, method VARCHAR NOT NULL,
                      weight DOUBLE NOT NULL, flagged BOOLEAN NOT NULL, weight_first DOUBLE, weight_mean DOUBLE,
                      weight_min DOUBLE, weight_max DOUBLE, epochs_flagged INTEGER""",
        "excluded": "run_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, step VARCHAR NOT NULL, reason VARCHAR NOT NULL",
        "selections": """run_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, method VARCHAR NOT NULL, score DOUBLE,
                         selected BOOLEAN NOT NULL, rank INTEGER""",
        "prompt_votes": "run_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, lf VARCHAR NOT NULL, vote INTEGER NOT NULL",
    }),
)
_CURATED_5 = MIGRATIONS[4][MIGRATIONS[4].index("CREATE VIEW curated AS"):]
MIGRATIONS += (
    # 7: labels.decided: covered and, under tie_break "abstain", not a tie; the later stages read the
    # items their label run decided. Earlier runs had no tie policy: their covered items count as decided.
    f"""
    ALTER TABLE labels ADD COLUMN decided BOOLEAN;
    UPDATE labels SET decided = covered;
    {_CURATED_5.replace("CREATE VIEW curated AS", "CREATE OR REPLACE VIEW curated AS")
               .replace("l.confidence, l.covered,", "l.confidence, l.covered, l.decided,")}
    """,
)

MIGRATIONS += (
    # 8: per-item vote counts (a crowd aggregated before it reached thresher: how many votes each class
    # got, not who cast them), one list per item in class order.
    """
    CREATE TABLE vote_counts (
        item_id      VARCHAR PRIMARY KEY,
        counts       INTEGER[] NOT NULL
    );
    """,
)

_CURATED_7 = MIGRATIONS[6][MIGRATIONS[6].index("CREATE OR REPLACE VIEW curated AS"):]
_CURATED_9 = (
    _CURATED_7.replace("i.item_id, i.dataset,", "i.item_id, substr(i.item_id, length(i.dataset) + 2) AS id, i.dataset,")
    .replace("coalesce(l.label, i.label) AS final_label, -- denoised when a label run exists",
             "coalesce(l.label, i.label) AS final_label, -- denoised when a label run exists\n"
             "            cf.name AS final_label_name, cg.name AS given_label_name,")
    .replace("i.gold                            -- for evaluation only",
             "i.gold,                           -- for evaluation only\n            cq.name AS gold_name")
    .replace("FROM items i\n", "FROM items i\n        LEFT JOIN classes cg ON cg.class_id = i.label\n"
             "        LEFT JOIN classes cq ON cq.class_id = i.gold\n", 1)
    .replace("AND x.run_id = (SELECT run_id FROM lr WHERE stage = 'export');",
             "AND x.run_id = (SELECT run_id FROM lr WHERE stage = 'export')\n"
             "        LEFT JOIN classes cf ON cf.class_id = coalesce(l.label, i.label);")
)
MIGRATIONS += (
    # 9: the config's class names (written by every ingest), and the curated view in the user's terms:
    # the id as the source gave it (item_id without its dataset prefix) and each label's class name.
    f"""
    CREATE TABLE classes (
        class_id     INTEGER PRIMARY KEY,
        name         VARCHAR NOT NULL
    );
    {_CURATED_9}
    CREATE VIEW labelled AS             -- every label run's labels in your terms: your id, class names
        SELECT l.run_id, l.item_id, substr(l.item_id, length(i.dataset) + 2) AS id, i.dataset, i.split,
            l.label, c.name AS label_name, l.probs, l.confidence, l.entropy, l.covered, l.decided,
            i.gold, g.name AS gold_name
        FROM labels l JOIN items i USING (item_id)
        LEFT JOIN classes c ON c.class_id = l.label
        LEFT JOIN classes g ON g.class_id = i.gold;
    """,
)

_CURATED_10 = (
    _CURATED_9.replace("coalesce(l.label, i.label) AS final_label, -- denoised when a label run exists",
                       "coalesce(r.label, l.label, i.label) AS final_label, -- reviewed, else denoised, else given\n"
                       "            CASE WHEN r.label IS NOT NULL THEN 'review' WHEN l.label IS NOT NULL THEN 'denoised' "
                       "WHEN i.label IS NOT NULL THEN 'given' END AS final_label_from,\n"
                       "            r.label AS reviewed_label, r.reviewer,")
    .replace("LEFT JOIN classes cf ON cf.class_id = coalesce(l.label, i.label);",
             "LEFT JOIN reviewed r ON r.item_id = i.item_id\n"
             "        LEFT JOIN classes cf ON cf.class_id = coalesce(r.label, l.label, i.label);")
)
MIGRATIONS += (
    # 10: answers a person gave (thresher review, or imported): one row per item and reviewer, the
    # latest answer; label NULL means "unsure". ``reviewed`` is each item's latest labelled answer,
    # which wins over the denoised label in curated and in the export.
    f"""
    CREATE TABLE reviews (
        item_id      VARCHAR NOT NULL,
        reviewer     VARCHAR NOT NULL,
        label        INTEGER,           -- class id; NULL: the reviewer was unsure
        answered_at  TIMESTAMP NOT NULL,
        source       VARCHAR NOT NULL,  -- 'review' (the page) or the file it was imported from
        shown_from   JSON,              -- the runs whose outputs the page showed (label, detect)
        PRIMARY KEY (item_id, reviewer)
    );
    CREATE VIEW reviewed AS             -- each reviewed item's latest labelled answer
        SELECT item_id, arg_max(label, answered_at) AS label, arg_max(reviewer, answered_at) AS reviewer,
            max(answered_at) AS answered_at, count(*) AS answers, count(DISTINCT label) > 1 AS reviewers_disagree
        FROM reviews WHERE label IS NOT NULL GROUP BY item_id;
    {_CURATED_10}
    """,
    # 11: each label run's LFs judged by a person's answers (beside lf_summary's empirical accuracy on
    # gold and the LabelModel's estimate); read live, so a new answer counts without a new label run.
    """
    CREATE VIEW lf_reviewed AS
        SELECT v.run_id, v.lf, count(*) AS reviewed_votes, avg((v.vote = r.label)::DOUBLE) AS reviewed_accuracy
        FROM votes v JOIN reviewed r ON r.item_id = v.item_id
        GROUP BY v.run_id, v.lf;
    """,
)

assert len(MIGRATIONS) == SCHEMA_VERSION


class SchemaVersionError(RuntimeError):
    """The database was written by a newer thresher than this one."""


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """Return the schema version of an open database (0 for an empty one)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
    return int(row or 0)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION` in one transaction; return the version."""
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"The database has schema version {current}, newer than this thresher's "
            f"{SCHEMA_VERSION}. Upgrade thresher to open it."
        )
    if current == SCHEMA_VERSION:
        return current
    with transaction(con):
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT current_timestamp)"
        )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            con.execute(MIGRATIONS[version - 1])
            con.execute("INSERT INTO schema_version (version) VALUES (?)", [version])
    logger.info("Migrated database schema from version %d to %d", current, SCHEMA_VERSION)
    return SCHEMA_VERSION


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a project database, creating and migrating it unless ``read_only``.

    A read-only connection refuses every write, so it is what ``thresher sql`` uses.
    """
    path = Path(path)
    if read_only:
        if not path.exists():
            raise FileNotFoundError(f"No thresher database at '{path}'.")
        con = duckdb.connect(str(path), read_only=True)
        version = schema_version(con)
        if version != SCHEMA_VERSION:
            con.close()
            raise SchemaVersionError(
                f"'{path}' has schema version {version}; this thresher reads version "
                f"{SCHEMA_VERSION}. Open it once read-write (any stage) to migrate it."
            )
        return con
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), config=_memory_config())
    migrate(con)
    return con


def _memory_config() -> dict[str, str]:
    """DuckDB's memory limit for a writing connection: ``$THRESHER_DB_MEMORY`` (e.g. ``4GB``), 1GB by
    default. DuckDB's own default, 80 % of RAM, lets its buffers grow with the database; past the
    limit it spills sorts, joins and temporary tables to ``<db>.tmp`` instead."""
    return {"memory_limit": os.environ.get("THRESHER_DB_MEMORY") or "1GB"}


def release_buffers(con: duckdb.DuckDBPyConnection) -> None:
    """Hand back the memory DuckDB keeps for pages it has read (up to its limit; they stay on disk),
    before work that needs it elsewhere: worker processes, or big NumPy arrays. Lowering the limit
    evicts them; the limit of a writing connection is then restored. The C heap's free pages go back too."""
    con.execute("SET memory_limit = '16MB'")
    con.execute(f"SET memory_limit = '{_memory_config()['memory_limit']}'")
    trim_heap()
