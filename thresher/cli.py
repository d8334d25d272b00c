"""The ``thresher`` command line: run the pipeline or one stage, and query the results with SQL."""

from __future__ import annotations

import contextlib
from contextlib import nullcontext

import csv
import inspect
import json
import os
import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from thresher.core.stages import STAGES

app = typer.Typer(
    help=(
        "thresher turns raw, weakly- or noisily-labelled rows into a clean, reweighted training set.\n\n"
        "Stages: ingest -> label -> detect -> reweight -> select -> export. `thresher run CONFIG` runs them all; each stage "
        "also runs alone, and unchanged stages are reused. Every stage writes to one DuckDB file you can query with "
        "`thresher sql` (even while a run is writing it). `thresher deploy` schedules runs on a Prefect server; "
        "`thresher report` writes an HTML report of a run."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, `| less`) gets 120 columns instead of rich's 80.
out = Console() if sys.stdout.isatty() else Console(width=120)
err = Console(stderr=True)

ConfigArg = typer.Argument(..., exists=True, dir_okay=False, help="Pipeline config file (YAML).")
DbOpt = typer.Option(None, "--db", help="Database file; overrides 'db' in the config.")
OutOpt = typer.Option(None, "--out", help="Export directory; overrides 'export.out_dir' in the config.")
ProgressOpt = typer.Option(True, "--progress/--no-progress", help="Draw progress bars on stderr.")
ForceOpt = typer.Option(False, "--force", help="Recompute even if the config and inputs are unchanged since the "
                        "last completed run (which is otherwise reused).")


_options = {"debug": False}


def _version(value: bool) -> None:
    if value:
        import thresher

        out.print(f"thresher {thresher.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show Prefect's logs and full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _options["debug"] = debug


def _reader(db: str | Path):
    """A read-only connection to ``db`` and whether it reads the snapshots, or a clear error and exit.

    While a stage writes the database (DuckDB then admits no reader), the connection reads the
    Parquet snapshots of the completed stages instead, with a note on stderr."""
    import duckdb

    from thresher.storage.lock import is_lock_conflict
    from thresher.storage.schema import SchemaVersionError, connect
    from thresher.storage.snapshot import open_snapshot

    try:
        return connect(db, read_only=True), False
    except (OSError, SchemaVersionError) as exc:
        _fail(str(exc))
    except duckdb.IOException as exc:
        if not is_lock_conflict(exc):
            _fail(f"Cannot open '{db}' read-only: {exc}")
        try:
            con, manifest = open_snapshot(db)
        except (FileNotFoundError, RuntimeError) as missing:
            _fail(f"'{db}' is being written by a running stage, and there is no snapshot to read instead: {missing}")
        err.print(f"[yellow]note:[/] '{escape(str(db))}' is being written by a running stage; answering from the snapshot of the "
                  f"completed stages (as of {manifest['written_at']}).", highlight=False)
        return con, True


def _open_read_only(config: Path, db: str | None):
    """The loaded config and a read-only connection to its database (see :func:`_reader`)."""
    from thresher.pipeline.config import load_config

    try:
        cfg = load_config(config, db=db)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    return cfg, _reader(cfg.db)[0]


def _check_config(config: Path, *, db: str | None = None, out_dir: str | None = None):
    """The checked config (see :mod:`thresher.pipeline.check`), or its problems as the one error and exit 1."""
    from thresher.pipeline.check import check_config

    try:
        return check_config(config, db=db, out_dir=out_dir)
    except (OSError, ValueError) as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # one line, not cut at 80
    raise typer.Exit(code=1)


def _run(stage: str, config: Path, *, db: str | None = None, out_dir: str | None = None, progress: bool = True,
         force: bool = False) -> dict:
    """Run the pipeline (``stage="pipeline"``) or one stage; return the summary.

    With a Prefect server configured (``PREFECT_API_URL`` or the active profile's) the stages run as
    its flows; without one they run here, without Prefect (:mod:`thresher.pipeline.local`; a ``dask``
    section's chunks as plain Dask futures), unless ``THRESHER_PREFECT=ephemeral`` asks for Prefect's
    temporary server. The config is read and checked once, here."""
    from thresher import prefect_setup

    prefect_setup.configure(debug=_options["debug"])
    cfg = _check_config(config, db=db, out_dir=out_dir).config  # before any flow
    try:
        url = prefect_setup.api_url()
        if url:
            prefect_setup.check_api(url)
    except ConnectionError as exc:
        _fail(str(exc))
    local = url is None and os.environ.get("THRESHER_PREFECT", "").lower() != "ephemeral"
    from thresher.labeling.apply import LFFaultError
    from thresher.labeling.llm.backend import LLMBackendError
    from thresher.storage.lock import DatabaseLockedError
    from thresher.storage.repo import new_run_id

    def show(name: str, finished: dict) -> None:  # each stage's summary as soon as it finishes
        finished["db"] = str(cfg.db)  # for the hints the summaries print
        if finished.get("cached"):
            out.print(f"[dim]{name}: config and inputs unchanged since run {finished['run_id']}, reused "
                      "(--force recomputes)[/]", highlight=False)
        else:
            SHOW[name](finished)

    run_id = new_run_id()
    if stage == "pipeline":
        out.print(f"[bold]run {run_id}[/]", highlight=False)
    listeners: list = []
    try:
        if local:
            from thresher.pipeline.local import run_local

            summary = run_local(cfg, stage, run_id=run_id, progress=progress, force=force, on_stage=show)
        else:
            from thresher import flows
            from thresher.flows.stage import STAGE_LISTENERS

            listeners = STAGE_LISTENERS
            listeners.append(show)
            flow = flows.pipeline_flow if stage == "pipeline" else flows.STAGE_FLOWS[stage]
            summary = flow(config_path=str(config), config=cfg, run_id=run_id, progress=progress, force=force)
    except (OSError, LookupError, ValueError, LFFaultError, LLMBackendError, DatabaseLockedError) as exc:
        if _options["debug"]:
            raise
        _fail(str(exc))
        raise  # unreachable: _fail exits
    except Exception as exc:  # anything else: still one line, the traceback with --debug
        if _options["debug"]:
            raise
        _fail(prefect_setup.explain(exc) or f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        raise
    finally:
        if show in listeners:
            listeners.remove(show)
    return summary


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None or v != v else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    return table


def _show_ingest(summary: dict) -> None:
    rejected = summary["rejected"]
    reasons = f" ({', '.join(f'{k}: {v}' for k, v in sorted(rejected.items()))})" if rejected else ""
    answers = f", {summary['answers']} crowd answers stored as votes" if summary.get("answers") else ""
    out.print(f"[bold]ingest[/]: {summary['rows']} rows read, {summary['new_items']} new items{answers}, "
              f"{summary['already_present']} already present, {sum(rejected.values())} rejected{reasons}",
              highlight=False)
    if rejected:
        db = shlex.quote(summary.get("db", "DB"))
        out.print(f"  see them with: thresher sql \"select line, reason, detail from rejects\" --db {escape(str(db))}", highlight=False,
                  soft_wrap=True)  # one line, ready to paste


def _show_label(summary: dict) -> None:
    counted = f" + {summary['counted_votes']} counted (vote_counts)" if summary.get("counted_votes") else ""
    out.print(f"[bold]label[/]: {summary['n_items']} items, {summary['n_lfs']} LFs, "
              f"{summary['n_votes']} votes{counted}, coverage {summary['coverage']:.3f}", highlight=False)
    if summary["lf_summary"]:  # none when only vote counts label the items
        _show_lfs(summary["lf_summary"], summary.get("classes", []))
    evaluated = summary.get("evaluated", {})
    if evaluated:
        groups: dict[int, list[str]] = {}
        for lf, n in evaluated.items():
            groups.setdefault(n, []).append(lf)
        parts = [f"{len(lfs)} LFs from the vote cache" if n == 0 else f"{len(lfs)} LFs evaluated on {n} items"
                 for n, lfs in sorted(groups.items())]
        out.print(f"  LF votes: {'; '.join(parts)}", highlight=False)
    llm = summary.get("llm")
    if llm:
        out.print(f"  LLM prompts: {llm['prompts']} distinct, {llm['cached']} from the cache, {llm['sent']} sent, "
                  f"{llm['failed']} failed, {llm['tokens']} tokens"
                  + (f", in {llm['chunks']} chunks on the cluster" if llm.get("chunks") else ""), highlight=False)
        rows = [[lf, c["vote"], c["abstain_answer"], c["no_answer"], c["unmatched"], c["failed"], c["not_sent"]]
                for lf, c in llm["lfs"].items()]
        out.print(_table("Prompted LFs: answers per item", ["lf", "vote", "abstain answer", "no answer",
                                                           "unmatched", "failed", "not sent"], rows))
        if llm["budget_stopped"]:
            out.print(f"  [yellow]budget reached ({llm['budget_stopped']}): the next run sends the rest[/]",
                      highlight=False)
        for error in llm["errors"]:
            out.print(f"  [yellow]failed after retries (abstained; asked again next run)[/]: {escape(str(error))}", highlight=False)
    for lf, fault in summary.get("faults", {}).items():
        examples = "; ".join(f"{item}: {error}" for item, error in fault["examples"])
        out.print(f"  [yellow]LF {lf!r} raised on {fault['count']} items (abstained there)[/], e.g. {escape(examples)}",
                  highlight=False)
    model = summary["model"]
    auto = any("heldout_agreement" in entry or "excluded" in entry for entry in summary["selection"])
    how = ""
    answers = (summary.get("reviews") or {}).get("used", 0)
    if summary["selection"]:
        how = (" (model: auto, by held-out vote agreement, no gold)" if auto
               else f" (model: auto, chosen among {len(summary['selection'])} candidates by accuracy on {answers} reviewed "
                    "items' answers)" if answers
               else f" (selected among {len(summary['selection'])} candidates on the dev split)")
    out.print(f"  model: {', '.join(f'{k}={v}' for k, v in model.items())}{how}", highlight=False)
    if auto:
        for entry in summary["selection"]:
            behind = entry.get("standard_errors_behind")
            score = (f"agreement {entry['heldout_agreement']:.4f}"
                     + ("" if behind is None else f" ({behind:g} standard errors behind the best)")
                     if "heldout_agreement" in entry else f"left out: {entry.get('excluded')}")
            out.print(f"    {'*' if entry.get('chosen') else ' '} {entry['model']}: {score}", highlight=False)
        for entry in summary["selection"]:
            if entry.get("note"):
                out.print(f"  [yellow]note[/]: {escape(entry['note'])}", highlight=False, soft_wrap=True)
    if summary.get("tied"):
        policy = summary.get("tie_break", "abstain")
        out.print(f"  {summary['tied']} covered items tie between classes: "
                  + ("left undecided (tie_break: abstain), so the later stages leave them out" if policy == "abstain"
                     else "each given one of its tied classes (tie_break: random)"), highlight=False)
    if summary["accuracy"]:
        binary = any("denoised_f1" in acc for acc in summary["accuracy"].values())
        columns = ["split", "denoised acc", "majority acc"] + (["denoised F1", "majority F1"] if binary else [])
        columns += ["denoised acc, decided", "decided", "coverage", "n gold"]
        rows = [[split, acc["denoised"], acc["majority_vote"]]
                + ([acc["denoised_f1"], acc["majority_vote_f1"]] if binary else [])
                + [acc.get("denoised_decided"), acc.get("decided"), acc["coverage"], acc["n"]]
                for split, acc in summary["accuracy"].items()]
        out.print(_table("Denoised labels against gold (acc: every item, a tie to one of its classes per item; decided: "
                         "Snorkel's score(), ties and uncovered left out)", columns, rows))


def _show_lfs(records: list[dict], classes: list[str]) -> None:
    from thresher.core.classes import class_names

    reviewed = any(r.get("reviewed_votes") for r in records)
    rows = [[r["lf"], class_names(r["polarity"], classes), r["coverage"], r["overlaps"], r["conflicts"], r["correct"],
             r["emp_accuracy"], r["learned_accuracy"] if r["coverage"] else None]
            + ([r["reviewed_accuracy"], r["reviewed_votes"]] if reviewed else []) for r in records]
    columns = ["lf", "polarity", "coverage", "overlaps", "conflicts", "correct", "emp. acc", "learned acc"]
    columns += ["reviewed acc", "reviewed votes"] if reviewed else []
    out.print(_table("Labeling functions", columns, rows))


def _show_detect(summary: dict) -> None:
    out.print(f"[bold]detect[/]: {summary['n_checked']} labels checked, {summary['n_issues']} label issues found "
              f"by {summary.get('use', 'confident_learning')}", highlight=False)
    unchecked = summary.get("classes", {}).get("unchecked")
    if unchecked:
        shown = ", ".join(f"{name} ({n})" for name, n in unchecked.items())
        out.print(f"  not checked, too few items for the folds: {shown}; kept unflagged", highlight=False)
    skipped = summary.get("features", {}).get("skipped")
    no_text = summary.get("classes", {}).get("no_text")
    if skipped:
        out.print(f"  [yellow]note[/]: {escape(skipped)}", highlight=False, soft_wrap=True)
    elif no_text:
        out.print(f"  not checked, no text to compute features from: {no_text} items; kept unflagged", highlight=False)
    for warning in [] if skipped else summary.get("warnings", []):
        used = "" if summary.get("flags_used", True) else "; these flags are not used (detect.sanity: warn uses them)"
        out.print(f"  [yellow]warning[/]: {summary.get('use', 'the detector')} {escape(warning)}{used}", highlight=False)
    weights = summary.get("weights", {})
    if weights.get("share"):
        shares = ", ".join(f"{name} {v['items']:.1%} of items, {v['weight']:.1%} of weight "
                           f"({v['weight_unbalanced']:.1%} unbalanced)" for name, v in weights["share"].items())
        out.print(f"  weights ({weights['method']}, balance {weights['balance']}): {shares}", highlight=False)
    detectors = summary.get("detectors", {})
    if len(detectors) > 1 or any("f1" in d for d in detectors.values()):
        gold = any("f1" in d for d in detectors.values())
        columns = ["detector", "flagged", "rate"] + (["precision", "recall", "F1", "AUROC"] if gold else [])
        rows = [[name, d["n_issues"], d["issue_rate"]] + ([d["precision"], d["recall"], d["f1"], d["auroc"]] if gold else [])
                for name, d in detectors.items()]
        out.print(_table("Noise detectors" + (" (against gold labels)" if gold else ""), columns, rows))
    if summary["gold"]:
        g = summary["gold"]
        out.print(f"  against gold: label error rate {g['label_error_rate']:.3f}, issue precision "
                  f"{g['issue_precision']:.3f}, recall {g['issue_recall']:.3f}, accuracy of kept labels "
                  f"{g['accuracy_kept']:.3f}", highlight=False)
    judged = {name: d["reviewed"] for name, d in summary["detectors"].items() if d.get("reviewed")}
    for name, r in judged.items():  # a person's answers (thresher review) as the judge
        precision = "" if r["precision"] is None else f" (precision {r['precision']:.2f})"
        out.print(f"  on your {r['answered']} answers: {escape(name)} flagged {r['flagged']}, {r['right']} of them "
                  f"rightly{precision}", highlight=False)


def _show_reweight(summary: dict) -> None:
    out.print(f"[bold]reweight[/]: {summary['n_items']} items weighed by {summary['strategy']} in "
              f"{summary['seconds']:.1f} s; mean weight {summary['mean_weight']:.3f}, "
              f"{summary['n_flagged']} below 0.5", highlight=False)
    epochs = summary.get("epochs", [])
    if epochs:
        rows = [[e["epoch"], e["mean_weight"], e["n_flagged"], e["seconds"]] for e in epochs]
        out.print(_table("Weights per epoch", ["epoch", "mean weight", "below 0.5", "seconds"], rows))
    g = summary.get("gold") or {}
    if "auroc" in g:
        out.print(f"  against gold: label error rate {g['label_error_rate']:.3f}; mean weight of wrong labels "
                  f"{g['mean_weight_wrong']:.3f} vs right {g['mean_weight_right']:.3f}; AUROC {g['auroc']:.3f}; "
                  f"flag precision {g['flag_precision']:.3f}, recall {g['flag_recall']:.3f}", highlight=False)


def _show_select(summary: dict) -> None:
    out.print(f"[bold]select[/]: {summary['n_selected']} of {summary['n_pool']} items chosen by {summary['method']} "
              f"towards {summary['target']} ({summary['n_target']} items) in {summary['seconds']:.1f} s", highlight=False)
    rows = [[name, d["pool"], d["selected"], d["selected"] / max(summary["n_selected"], 1)]
            for name, d in summary["datasets"].items()]
    out.print(_table("Selection by dataset", ["dataset", "pool", "selected", "share of selection"], rows))
    labels = ", ".join(f"{k}: {v}" for k, v in summary["labels"].items())
    out.print(f"  labels of the selection: {labels}", highlight=False)
    g, kl = summary.get("gold") or {}, summary.get("kl") or {}
    if "selected_error_rate" in g:
        out.print(f"  against gold: label error rate {g['selected_error_rate']:.3f} in the selection vs "
                  f"{g['pool_error_rate']:.3f} in the pool", highlight=False)
    if "selected" in kl:
        out.print(f"  KL(target || selection) {kl['selected']:.2f} vs {kl['random_same_size']:.2f} for a random set of "
                  f"the same size (k-NN estimate; lower is closer); stopped by {kl['stopped_by']}", highlight=False)


def _show_export(summary: dict) -> None:
    labels = ", ".join(f"{k}: {v}" for k, v in summary["label_distribution"].items())
    excluded = ", ".join(f"{k}: {v}" for k, v in summary["excluded"].items()) or "none"
    splits = ", ".join(f"{k} {v}" for k, v in summary.get("splits", {}).items())
    held = ", ".join(f"{k} {v}" for k, v in summary.get("held_out", {}).items()) or "none"
    out.print(f"[bold]export[/]: {summary['rows']} rows in {summary['shards']} shard(s) -> {escape(str(summary['out_dir']))}\n"
              f"  splits {splits} (held out: {held}); labels {labels}; excluded {excluded}", highlight=False)
    proxy = summary.get("proxy") or {}
    if proxy.get("change"):
        raw, curated = proxy["raw"], proxy["curated"]
        out.print(f"  proxy model on {proxy['gold_items']} gold items of {', '.join(proxy['splits'])}: accuracy "
                  f"{raw['accuracy']:.3f} on the raw labels -> {curated['accuracy']:.3f} on the export "
                  f"(macro F1 {raw['macro_f1']:.3f} -> {curated['macro_f1']:.3f})", highlight=False)
        if proxy.get("warning"):
            out.print(f"  [yellow]warning[/]: {escape(proxy['warning'])}", highlight=False)
    elif proxy.get("note"):
        out.print(f"  proxy model: {escape(proxy['note'])}", highlight=False)
    for note in summary.get("notes", []):
        out.print(f"  [yellow]note[/]: {escape(note)}", highlight=False)


@app.command()
def init(
    directory: Path = typer.Argument(Path("."), file_okay=False,
                                     help="Project directory (made if missing); thresher.yaml and lfs.py go here."),
    data: Path = typer.Option(None, "--data", exists=True, dir_okay=False,
                              help="Your data file: CSV, TSV, JSONL, a JSON array or Parquet. Default: the one data "
                              "file in DIRECTORY."),
    text: str = typer.Option(None, "--text", help="The column with the text (default: one named like text, or "
                             "the longest strings)."),
    label: str = typer.Option(None, "--label", help="The column with the labels to clean (default: one named "
                              "label, class, category, ...)."),
    no_label: bool = typer.Option(False, "--no-label", help="Do not use a label column: label with LFs only."),
    classes: str = typer.Option(None, "--classes", help="Class names, comma-separated: for the label column's "
                                "values (ids or names), or, without a label column, the classes LFs vote."),
    force: bool = typer.Option(False, "--force", help="Replace an existing thresher.yaml and lfs.py."),
    progress: bool = ProgressOpt,
) -> None:
    """Start a project for your own data file: a commented config and LF file that check accepts and run completes.

    The roles of the columns (text, label, id, split) and the classes are read from the file.

    With a label column the config cleans those labels; without one, pass --classes: LFs label the rows."""
    from thresher.pipeline.starter import find_data_file, profile_data, write_starter

    try:
        path = data if data is not None else find_data_file(directory)
        profile = profile_data(path, text=text, label=label, no_label=no_label, progress=progress,
                               classes=None if classes is None else classes.split(","))
        written = write_starter(directory, profile, force=force)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    if "minilm-static" in written[0].read_text():  # built now, once per machine, not during the first run
        from thresher.features.static import StaticEncoder

        with out.status("Building the static encoder for the zero-shot LF (once per machine, ~12 s)...") \
                if progress else nullcontext():
            StaticEncoder().setup()
    out.print(f"Read {escape(str(path))}: {profile.rows:,} rows, columns {', '.join(profile.columns)}.", highlight=False)
    rows = [["text", profile.text, f"mean {profile.text_chars:,.0f} characters"]]
    if profile.label is not None:
        counts = ", ".join(f"{c} {n:,}" for c, n in profile.class_rows.items())
        empty = f"; {profile.unlabelled_rows:,} empty" if profile.unlabelled_rows else ""
        rows.append(["label", profile.label, f"{len(profile.classes)} classes: {counts}{empty} (cleaned: labels_from "
                     "given)"])
    else:
        rows.append(["label", "-", f"none: LFs vote the classes {', '.join(profile.classes)}"])
    if profile.gold is not None:
        rows.append(["gold", profile.gold, "recognised by its name: hand-checked labels, used only to score"])
    rows.append(["id", profile.id or "-", "unique" if profile.id else "none unique: items named by a hash of the row"])
    splits = ", ".join(f"{s} {n:,}" for s, n in profile.split_rows.items())
    rows.append(["split", profile.split or "-", splits if profile.split else "none: every row in 'train'"])
    out.print(_table("Columns", ["role", "column", "what init found"], rows))
    config = written[0]
    out.print(f"Wrote {escape(str(written[0]))} and {escape(str(written[1]))}. Next:", highlight=False)
    for command in (f"thresher check {config}", f"thresher run {config}",
                    f'thresher sql "SELECT * FROM curated LIMIT 10" {config}'):
        out.print(f"  {escape(command)}", highlight=False, soft_wrap=True)


@app.command()
def run(config: Path = ConfigArg, db: str = DbOpt, out_dir: str = OutOpt, progress: bool = ProgressOpt,
        force: bool = ForceOpt) -> None:
    """Run the whole pipeline: ingest, label, detect, reweight and select (when configured), export."""
    _run("pipeline", config, db=db, out_dir=out_dir, progress=progress, force=force)  # summaries stream as stages end


SHOW = {"ingest": _show_ingest, "label": _show_label, "detect": _show_detect, "reweight": _show_reweight,
        "select": _show_select, "export": _show_export}  # one per stage of the registry (a test checks)


@app.command()
def deploy(
    config: Path = ConfigArg, db: str = DbOpt, out_dir: str = OutOpt,
    cron: str = typer.Option(None, "--cron", help='Cron schedule, e.g. "0 3 * * *" (daily at 03:00, server time zone).'),
    interval: float = typer.Option(None, "--interval", min=1, help="Run every this many seconds."),
    stage: str = typer.Option("pipeline", "--stage", help="What to deploy: pipeline, or one stage (ingest, label, "
                              "detect, reweight, select, export)."),
    name: str = typer.Option(None, "--name", help="Deployment name (default: the config's project)."),
) -> None:
    """Register the pipeline (or one stage) as a deployment on the Prefect server at PREFECT_API_URL, and serve it.

    The command keeps running: it is the worker that executes the scheduled runs (and runs started
    with `prefect deployment run` or from the UI). Stop it with Ctrl-C or SIGTERM; the schedule is paused.
    """
    from thresher import prefect_setup

    prefect_setup.configure(debug=_options["debug"])
    from thresher.core.stages import NAMES

    if stage != "pipeline" and stage not in NAMES:
        _fail(f"--stage must be one of {', '.join(('pipeline',) + NAMES)}. Got {stage!r}.")
    if cron and interval:
        _fail("Give --cron or --interval, not both.")
    cfg = _check_config(config, db=db, out_dir=out_dir).config
    url = prefect_setup.api_url()
    if not url:
        _fail("thresher deploy registers with a Prefect server: start one (`prefect server start`) and set "
              "PREFECT_API_URL, e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api")
    try:
        prefect_setup.check_api(url)
    except ConnectionError as exc:
        _fail(str(exc))
    from thresher import flows
    from thresher.flows.artifacts import RUN_LINES
    from prefect.types.entrypoint import EntrypointType

    os.environ[RUN_LINES] = "1"  # each run this process executes prints one line here

    parameters: dict[str, Any] = {"config_path": str(config.resolve()), "db": cfg.db}
    if stage in ("pipeline", "export"):
        parameters["out_dir"] = cfg.export.out_dir
    flow = flows.pipeline_flow if stage == "pipeline" else flows.STAGE_FLOWS[stage]
    from thresher.flows.serve import serve

    deployment = serve(flow, name=name or cfg.project, cron=cron, interval=interval, parameters=parameters,
                       description=f"thresher {stage} of {config.resolve()}", tags=["thresher", stage],
                       entrypoint_type=EntrypointType.MODULE_PATH)
    out.print(f"thresher deploy: stopped; the schedule of deployment '{deployment}' is paused "
              f"(`prefect deployment resume '{deployment}'` or the UI to resume it)", highlight=False)


@app.command()
def check(config: Path = ConfigArg, db: str = DbOpt, out_dir: str = OutOpt,
          explain: str = typer.Option(None, "--explain", metavar="SECTION",
                                      help="Also list a section's settings (detect, labeling.model, export, ...; "
                                           "'.' for the top level): your value, the default and what each does.")) -> None:
    """Validate the config without running anything: schema, sources and their columns, every LF.

    Every command runs this check first, so a mistake is reported in about a second, with the file,
    line and field, before any stage starts.
    """
    import time

    start = time.perf_counter()
    report = _check_config(config, db=db, out_dir=out_dir)
    cfg = report.config
    if explain is not None:
        out.print(_explain(cfg, explain))
    stages = cfg.stage_names()
    files = sum(report.files.values())
    out.print(f"[bold green]ok[/]: {escape(str(config))} ({time.perf_counter() - start:.2f} s): {len(cfg.sources)} source(s) "
              f"matching {files} file(s), columns found; {len(report.lfs)} LFs; stages {' -> '.join(stages)}; "
              f"database {escape(str(cfg.db))}", highlight=False)


def _explain(cfg: Any, section: str) -> Table:
    """A section's settings: each field's value in ``cfg``, its default and its documentation."""
    from pydantic import BaseModel

    from thresher.core.config import field_docs

    node: Any = cfg
    for part in [p for p in section.split(".") if p]:
        fields = type(node).model_fields if isinstance(node, BaseModel) else {}
        if part not in fields:
            sections = [n for n in fields if isinstance(getattr(node, n), BaseModel)]
            _fail(f"--explain: {section!r} is not a section of the config. Sections here: {', '.join(sections) or 'none'}.")
        node = getattr(node, part)
    if not isinstance(node, BaseModel):
        _fail(f"--explain: {section!r} is a setting, not a section (its value: {node!r}).")
    docs = field_docs(type(node))
    rows = []
    for name, info in type(node).model_fields.items():
        value = getattr(node, name)
        default = "(required)" if info.is_required() else info.get_default(call_default_factory=True)
        default = "(section)" if isinstance(default, BaseModel) else default
        shown = "(section)" if isinstance(value, BaseModel) else value
        rows.append([name, escape(_short(shown)), escape(_short(default)),
                     escape(info.description or docs.get(name) or (type(value).__doc__ or "").strip().split("\n")[0]
                            if isinstance(value, BaseModel) else info.description or docs.get(name, ""))])
    title = f"{section if section.strip('.') else 'top level'}: {(type(node).__doc__ or '').strip().splitlines()[0]}"
    table = _table(escape(title), ["setting", "yours", "default", "what it does"], rows)
    for column in table.columns[1:3]:  # values are short: the description gets the width
        column.max_width = 24
    table.columns[3].ratio = 1
    return table


def _short(value: Any, limit: int = 48) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit - 1] + "…"


@app.command()
def schema(file: Path = typer.Option(None, "--out", help="Write the schema to this file (default: print it).")) -> None:
    """Print the config's JSON schema (every section, field, type, allowed value and default), for YAML
    editors: point the YAML language server at it for completion and checks as you type."""
    from thresher.pipeline.config import yaml_schema

    text = json.dumps(yaml_schema(), indent=2) + "\n"
    if file is None:
        sys.stdout.write(text)
        return
    file.write_text(text)
    out.print(f"wrote {escape(str(file))}; add `# yaml-language-server: $schema={escape(str(file))}` as the first "
              "line of thresher.yaml", highlight=False)


def _label_options(config: Path, db: str | None, dry_run: bool = False, **_: Any) -> bool:
    """``thresher label --dry-run``: count the prompts instead of running the stage (True: handled)."""
    if dry_run:
        _label_dry_run(config, db)
    return dry_run


# Options a stage's command has besides the shared ones, and what they do before the stage would run.
STAGE_OPTIONS: dict[str, tuple[list[inspect.Parameter], Any]] = {
    "label": ([inspect.Parameter("dry_run", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, "--dry-run", help="Only count the LLM prompts and tokens a run would send, and how many are cached; "
        "send and write nothing."))], _label_options),
}


def _stage_command(spec: Any) -> None:
    """Register ``thresher <stage>`` for a stage of the registry: config, --db, --out (export), --progress,
    --force (cached stages) and the stage's own options; it runs the stage and prints its summary."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("config", keyword, annotation=Path, default=ConfigArg),
              inspect.Parameter("db", keyword, annotation=str, default=DbOpt)]
    if spec.section == "export":
        params.append(inspect.Parameter("out_dir", keyword, annotation=str, default=OutOpt))
    params.append(inspect.Parameter("progress", keyword, annotation=bool, default=ProgressOpt))
    if spec.cached:
        params.append(inspect.Parameter("force", keyword, annotation=bool, default=ForceOpt))
    extra, before = STAGE_OPTIONS.get(spec.name, ([], None))

    def command(**options: Any) -> None:
        if before is not None and before(**options):
            return
        _run(spec.name, options["config"], db=options["db"], out_dir=options.get("out_dir"),
             progress=options["progress"], force=options.get("force", False))  # prints the summary as the stage ends

    command.__signature__ = inspect.Signature(params + extra)  # type: ignore[attr-defined]
    command.__doc__ = spec.help
    command.__name__ = spec.name
    app.command(name=spec.name)(command)


for _spec in STAGES:
    _stage_command(_spec)


def _label_dry_run(config: Path, db: str | None) -> None:
    from thresher.labeling.apply.incremental import max_item_seq
    from thresher.labeling.llm.apply import dry_run
    from thresher.labeling.llm.factory import build_backend

    cfg, con = _open_read_only(config, db)
    try:
        if cfg.labeling is None:
            raise ValueError(f"'{config}' has no 'labeling' section.")
        prompted = cfg.labeling.build_prompted_lfs()
        if not prompted:
            out.print("No prompted LFs in this config: a run sends no LLM prompts.")
            return
        plan = dry_run(con, prompted, build_backend(cfg.labeling.llm), through_seq=max_item_seq(con))
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    finally:
        con.close()
    rows = [[lf, p["items"], p["distinct_prompts"], p["cached"], p["to_send"]] for lf, p in plan["lfs"].items()]
    out.print(_table("Prompted LFs (dry run: nothing sent)", ["lf", "items", "distinct prompts", "cached", "to send"], rows))
    budget = cfg.labeling.llm.budget
    limits = [f"{k}={v}" for k, v in (("max_calls", budget.max_calls), ("max_tokens", budget.max_tokens)) if v is not None]
    out.print(f"A run would send [bold]{plan['to_send']}[/] prompts (~{plan['estimated_tokens']} tokens, estimated as "
              f"characters / 4 plus max_tokens); {plan['cached']} of {plan['distinct_prompts']} distinct prompts are "
              f"cached. Budget: {', '.join(limits) or 'none'}.", highlight=False)


@app.command()
def review(
    config: Path = ConfigArg,
    strategy: str = typer.Option("disagreement", "--strategy", help="What to show first: disagreement (the label "
                                 "models disagree: what chooses the model), flagged (the detector flagged it), low_confidence, conflict (LF votes "
                                 "against the label), random (stratified by label)."),
    reviewer: str = typer.Option(None, "--reviewer", help="Your name, stored with each answer (default: $USER)."),
    limit: int = typer.Option(500, "--limit", min=1, help="Items in the queue at most."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one)."),
    db: str = DbOpt,
) -> None:
    """Review items one at a time on a local page: a key per class, u unsure, s skip, z undo; every answer is stored at once."""
    import getpass

    import uvicorn

    try:
        reviewer = reviewer or getpass.getuser()
    except (KeyError, OSError):  # no login name (a bare container): ask for one
        _fail("Who is reviewing? Give --reviewer NAME (no login name to use here).")

    from thresher.pipeline.review_queue import build_queue
    from thresher.review import Session, create_app

    cfg, con = _open_read_only(config, db)
    try:
        queue = build_queue(con, list(cfg.classes), strategy=strategy, limit=limit, reviewer=reviewer,
                            denoise=cfg.labeling.model if cfg.labeling else None)
    except (LookupError, ValueError) as exc:
        _fail(str(exc))
    finally:
        con.close()
    session = Session(str(cfg.db), queue, reviewer, timeout=cfg.db_lock_timeout)
    server = uvicorn.Server(uvicorn.Config(create_app(session), host="127.0.0.1", port=port, log_level="warning"))

    def announce() -> None:
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        out.print(f"Reviewing {len(queue.items)} items ({strategy}) as {escape(session.reviewer)}. Open:\n"
                  f"  http://127.0.0.1:{bound}/?token={session.token}\nCtrl-C stops; every answer is already stored.",
                  highlight=False, soft_wrap=True)

    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets=sockets)
        announce()

    server.startup = startup  # type: ignore[method-assign]
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it caught once it has shut down
        server.run()
    out.print(f"{session.state()['reviewed']} answers stored in {escape(str(cfg.db))} (table reviews).", highlight=False)


reviews_app = typer.Typer(help="Answers a person gave about items (the reviews table): import them from another "
                          "labeling tool, export them. A reviewed label wins over the denoised one in curated and the export.",
                          no_args_is_help=True)
app.add_typer(reviews_app, name="reviews")


@reviews_app.command("import")
def reviews_import(
    config: Path = ConfigArg,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV/TSV or JSON Lines: item_id or id (with "
                                "dataset where ids repeat across datasets), label (class name or id; empty: unsure), "
                                "reviewer (optional)."),
    reviewer: str = typer.Option(None, "--reviewer", help="Who answered, for rows without a reviewer column "
                                 "(default: the file's name)."),
    db: str = DbOpt,
) -> None:
    """Store answers given elsewhere; rows naming an unknown item or class go to rejects with their reason."""
    from thresher.pipeline.config import load_config
    from thresher.storage.reviews import import_answers

    try:
        cfg = load_config(config, db=db)
        summary = import_answers(cfg.db, file, list(cfg.classes), reviewer=reviewer, timeout=cfg.db_lock_timeout)
    except (OSError, ValueError, LookupError) as exc:
        _fail(str(exc))
    rejected = ", ".join(f"{k}: {v}" for k, v in sorted(summary.rejected.items())) or "none"
    out.print(f"reviews: {summary.rows} rows read, {summary.stored} answers stored, rejected {rejected}", highlight=False)
    if summary.rejected:
        out.print(f'  see them with: thresher sql "select line, reason, detail from rejects where source = '
                  f"'{escape(str(file))}'\" --db {escape(str(cfg.db))}", highlight=False, soft_wrap=True)


@reviews_app.command("export")
def reviews_export(
    config: Path = ConfigArg,
    file: Path = typer.Option(..., "--out", dir_okay=False, help="Where to write them: .csv, or .jsonl for JSON Lines."),
    db: str = DbOpt,
) -> None:
    """Write every answer (item_id, id, dataset, label, label_name, reviewer, answered_at, source); the CSV imports back."""
    from thresher.storage.reviews import export_answers

    _, con = _open_read_only(config, db)
    try:
        n = export_answers(con, file)
    finally:
        con.close()
    out.print(f"wrote {n} answers to {escape(str(file))}", highlight=False)


@app.command()
def lfs(config: Path = ConfigArg, db: str = DbOpt) -> None:
    """Show the LF summary of the latest label run: coverage, overlaps, conflicts, accuracies."""
    from thresher.storage.repo import latest_run, stored_lf_summary

    cfg, con = _open_read_only(config, db)
    try:
        run_id = latest_run(con, "label")
        records = stored_lf_summary(con, run_id)
        summary = json.loads(con.execute("SELECT summary FROM runs WHERE run_id = ? AND stage = 'label'", [run_id]).fetchall()[0][0])
    except LookupError as exc:
        _fail(str(exc))
    finally:
        con.close()
    out.print(f"[bold]label run {run_id}[/]: {summary['n_items']} items, coverage {summary['coverage']:.3f}, "
              f"model {summary.get('model', {})}", highlight=False)
    _show_lfs(records, summary.get("classes") or list(cfg.classes))


@app.command()
def report(
    config: Path = ConfigArg, db: str = DbOpt,
    run: str = typer.Option(None, "--run", help="A pipeline run id (default: each stage's latest completed run)."),
    output: Path = typer.Option(None, "--out", help="HTML file to write (default: report-<run>.html beside the database)."),
) -> None:
    """Write one self-contained HTML report of a run: LF summary, class balance, noise scores, weights, selection."""
    from thresher.report import build_report

    cfg, con = _open_read_only(config, db)
    try:
        result = build_report(con, cfg.classes, run_id=run, project=cfg.project)
    except LookupError as exc:
        _fail(str(exc))
    finally:
        con.close()
    path = output or Path(cfg.db).parent / f"report-{result.run}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.html(), encoding="utf-8")
    out.print(f"[bold]report[/]: {len(result.sections)} sections, {result.images} plots -> {escape(str(path))}", highlight=False)


class Format(str, Enum):
    auto = "auto"
    table = "table"
    csv = "csv"
    json = "json"


CELL_WIDTH = 60  # a table cell on a terminal shows this many characters, then an ellipsis


@app.command()
def sql(
    query: str = typer.Argument(..., help="SQL to run, e.g. \"select * from items limit 5\"."),
    config: Path = typer.Argument(None, exists=True, dir_okay=False,
                                  help="Pipeline config: query its database (as every other command)."),
    db: Path = typer.Option(None, "--db", help="Database file to query; overrides the config's (default: "
                            "thresher.duckdb)."),
    format: Format = typer.Option(Format.auto, "--format", "-f", help="Output format; auto: a table on a "
                                  "terminal (long cells cut), CSV when piped (full values)."),
) -> None:
    """Query the database read-only: only statements that read are run.

    SELECT (with WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE) and EXPLAIN run; anything else (ATTACH,
    COPY, SET, INSTALL, DELETE, ...) is refused before the query starts, and file and network
    access are off. While a pipeline is writing the database (DuckDB then admits no other reader),
    the query is answered from the Parquet snapshots of the stages completed so far, with a note
    on stderr. The connection is closed as soon as the answer is read, so a waiting stage goes on.
    """
    import duckdb

    from thresher.storage.snapshot import snapshot_dir
    from thresher.storage.sql import ReadOnlySQLError, lock_down, read_statements, run_read_only

    try:
        read_statements(query)  # refused before the database is even opened
    except ReadOnlySQLError as exc:
        _fail(str(exc))
    if db is None and config is not None:
        from thresher.pipeline.config import load_config

        try:
            db = Path(load_config(config).db)
        except (OSError, ValueError) as exc:
            _fail(str(exc))
    db = db or Path("thresher.duckdb")
    terminal = sys.stdout.isatty()
    if format is Format.auto:
        format = Format.table if terminal else Format.csv
    con, from_snapshot = _reader(db)
    allowed = [snapshot_dir(db)] if from_snapshot else []
    try:
        lock_down(con, allowed_directories=allowed)
        columns, rows = run_read_only(con, query)
    except duckdb.Error as exc:
        _fail(str(exc))
    finally:
        con.close()
    if format is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif format is Format.json:
        sys.stdout.write(json.dumps([dict(zip(columns, row)) for row in rows], default=str, ensure_ascii=False) + "\n")
    else:
        table = Table()
        for column in columns:  # on a terminal, long values end in an ellipsis; piped, they are whole
            table.add_column(column, max_width=CELL_WIDTH if terminal else None,
                             overflow="ellipsis" if terminal else "fold", no_wrap=terminal)
        for row in rows:
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        Console(width=None if terminal else 100_000).print(table)


if __name__ == "__main__":
    app()
