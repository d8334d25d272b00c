"""A self-contained HTML report of one pipeline run: tables, and SVG plots embedded as images.

It shows what each stage did: the LF summary with the LabelModel's estimated accuracies, class
balance before and after curation, noise-score histograms per detector, the weight distribution,
the selection, and the LLM calls. Everything is read from the database; nothing is recomputed.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

from thresher.core.classes import class_names
from thresher.plots import bar_chart, histogram
from thresher.storage.repo import run_summary

STAGES = ("ingest", "label", "detect", "reweight", "select", "export")


@dataclass
class Report:
    """The sections of a report, rendered to one HTML page by :meth:`html`."""

    title: str
    run: str
    sections: list[tuple[str, str]] = field(default_factory=list)  # (heading, HTML body)
    images: int = 0

    def add(self, heading: str, body: str) -> None:
        self.sections.append((heading, body))

    def html(self) -> str:
        body = "\n".join(f"<section><h2>{html.escape(h)}</h2>\n{b}\n</section>" for h, b in self.sections)
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f2f2f2; }}
img {{ max-width: 100%; }}
section {{ margin-bottom: 2em; }}
.note {{ color: #666; font-size: 0.9em; }}
</style></head>
<body data-images="{self.images}">
<h1>{html.escape(self.title)}</h1>
{body}
<script>
// For headless checks: how many embedded images actually decoded.
window.addEventListener("load", () => {{
  const ok = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = String(ok);
}});
</script>
</body></html>
"""


def _table(columns: list[str], rows: list[tuple | list]) -> str:
    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.3f}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(report: Report, svg: str) -> str:
    """An SVG chart (see :mod:`thresher.plots`) as an image embedded in the page."""
    report.images += 1
    return f'<img alt="plot" src="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}">'


def stage_runs(con: duckdb.DuckDBPyConnection, run_id: str | None) -> dict[str, str]:
    """stage -> run id: the stages of ``run_id``, or each stage's latest completed run."""
    if run_id is None:
        return dict(con.execute("SELECT stage, run_id FROM latest_runs").fetchall())
    found = dict(con.execute("SELECT stage, run_id FROM runs WHERE run_id = ? AND status = 'completed'",
                             [run_id]).fetchall())
    if not found:
        raise LookupError(f"Run '{run_id}' has no completed stage in this database.")
    return found


def build_report(con: duckdb.DuckDBPyConnection, classes: list[str], *, run_id: str | None = None,
                 project: str = "thresher") -> Report:
    """Collect every completed stage's outputs into a :class:`Report`."""
    runs = stage_runs(con, run_id)
    if not runs:
        raise LookupError("No completed stage in this database: run `thresher run CONFIG` first.")
    name = run_id or max(runs.values())
    report = Report(f"{project}: run {name}", name)
    rows = con.execute(
        "SELECT r.stage, r.run_id, r.status, r.started_at, round(epoch(r.ended_at - r.started_at), 1) "
        "FROM runs r JOIN (SELECT unnest(?::VARCHAR[]) AS stage, unnest(?::VARCHAR[]) AS run_id) s USING (stage, run_id) "
        "ORDER BY r.started_at", [list(runs), list(runs.values())]).fetchall()
    report.add("Stages", _table(["stage", "run", "status", "started", "seconds"], rows))

    items, rejects = con.execute("SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM rejects)").fetchall()[0]
    reasons = con.execute("SELECT reason, count(*) FROM rejects GROUP BY reason ORDER BY 2 DESC").fetchall()
    report.add("Ingest", f"<p>{items:,} items; {rejects:,} rejected rows.</p>" + (_table(["reason", "rows"], reasons)
                                                                                   if reasons else ""))
    if "label" in runs:
        _label_section(con, report, runs["label"])
    _balance_section(con, report, classes, runs)
    if "detect" in runs:
        _detect_section(con, report, runs["detect"])
    _weights_section(con, report, runs)
    if "select" in runs:
        _select_section(con, report, runs["select"], classes)
    if "export" in runs:
        summary = run_summary(con, runs["export"], "export")
        report.add("Export", f"<p>{summary.get('rows', 0):,} rows in {summary.get('shards', 0)} shards at "
                             f"<code>{html.escape(str(summary.get('out_dir', '')))}</code>.</p>"
                   + _table(["excluded because", "items"], sorted(summary.get("excluded", {}).items()))
                   + _table(["split", "rows exported", "items held out"],
                            [(s, summary.get("splits", {}).get(s, 0), summary.get("held_out", {}).get(s, 0))
                             for s in sorted({*summary.get("splits", {}), *summary.get("held_out", {})})]))
        _proxy_section(report, summary.get("proxy") or {})
    return report


def _proxy_section(report: Report, proxy: dict) -> None:
    """What curation changed for a proxy model, or why nothing was scored."""
    if not proxy:
        return
    if not proxy.get("scored"):
        report.add("What curation changed", f"<p>Not measured: {html.escape(proxy.get('note', ''))}.</p>")
        return
    rows = [(name, proxy[name].get("rows"), proxy[name].get("accuracy"), proxy[name].get("macro_f1"))
            for name in ("raw", "curated")]
    report.add("What curation changed", (
        f"<p>A proxy model ({html.escape(proxy['model'])}) trained on the raw labels of the training items and on "
        f"the export, scored on the {proxy['gold_items']:,} gold labels of the held-out split(s) "
        f"{html.escape(', '.join(proxy['splits']))}.</p>"
        + _table(["trained on", "rows", "accuracy", "macro F1"], rows)
        + (f"<p><b>Warning</b>: {html.escape(proxy['warning'])}.</p>" if proxy.get("warning") else "")))


def _label_section(con: duckdb.DuckDBPyConnection, report: Report, run: str) -> None:
    lfs = con.execute(
        "SELECT s.lf, l.kind, s.polarity, s.coverage, s.overlaps, s.conflicts, s.emp_accuracy, s.learned_accuracy, "
        "r.reviewed_accuracy, coalesce(r.reviewed_votes, 0) FROM lf_summary s JOIN lfs l USING (run_id, lf) "
        "LEFT JOIN lf_reviewed r USING (run_id, lf) WHERE s.run_id = ? ORDER BY s.lf", [run]).fetchall()
    reviewed = any(r[9] for r in lfs)
    summary = run_summary(con, run, "label")
    classes = summary.get("classes", [])
    lfs = [(r[0], r[1], class_names(r[2], classes), *r[3:7], r[7] if r[3] else None)  # polarity by name; no
           + ((r[8], r[9]) if reviewed else ()) for r in lfs]  # learned accuracy for an LF without votes
    accuracy = [(split, a.get("denoised"), a.get("majority_vote"), a.get("denoised_decided"), a.get("decided"),
                 a.get("coverage"), a.get("n")) for split, a in summary.get("accuracy", {}).items()]
    body = _table(["LF", "kind", "polarity", "coverage", "overlaps", "conflicts", "emp. accuracy", "LabelModel accuracy"]
                  + (["accuracy on reviewed items", "reviewed votes"] if reviewed else []), lfs)
    names = [r[0] for r in lfs]
    bars = {"LabelModel estimate": [np.nan if r[7] is None else r[7] for r in lfs],
            "empirical (gold)": [np.nan if r[6] is None else r[6] for r in lfs]}
    if reviewed:
        bars["a person's answers"] = [np.nan if r[8] is None else r[8] for r in lfs]
    body += _figure(report, bar_chart(names, bars, y_title="LF accuracy", y_max=1.0))
    if accuracy:
        body += "<h3>Denoised labels against gold</h3>" + _table(
            ["split", "LabelModel", "majority vote", "LabelModel, decided items (Snorkel's score())", "decided",
             "coverage", "n gold"], accuracy)
    llm = summary.get("llm")
    if llm:
        calls = con.execute("SELECT status, count(*), avg(latency_ms), sum(attempts - 1) FROM llm_calls "
                            "WHERE run_id = ? GROUP BY status ORDER BY status", [run]).fetchall()
        body += (f"<h3>LLM-prompted LFs</h3><p>{llm['prompts']:,} distinct prompts: {llm['cached']:,} from the cache, "
                 f"{llm['sent']:,} sent, {llm['failed']:,} failed.</p>"
                 + _table(["status", "calls", "mean latency (ms)", "retries"], calls))
    report.add(f"Labeling functions (label run {run})", body)


def _balance_section(con: duckdb.DuckDBPyConnection, report: Report, classes: list[str], runs: dict[str, str]) -> None:
    columns: dict[str, dict[int, int]] = {
        "given": dict(con.execute("SELECT label, count(*) FROM items WHERE label IS NOT NULL GROUP BY label").fetchall()),
        "gold": dict(con.execute("SELECT gold, count(*) FROM items WHERE gold IS NOT NULL GROUP BY gold").fetchall()),
    }
    if "label" in runs:
        columns["denoised"] = dict(con.execute("SELECT label, count(*) FROM labels WHERE run_id = ? AND decided "
                                               "GROUP BY label", [runs["label"]]).fetchall())
    if "export" in runs:
        exported = run_summary(con, runs["export"], "export").get("label_distribution", {})
        columns["exported"] = {classes.index(k) if k in classes else int(k): v for k, v in exported.items()}
    columns = {k: v for k, v in columns.items() if v}
    if not columns:
        return
    rows = [[c] + [columns[k].get(i, 0) for k in columns] for i, c in enumerate(classes)]

    shares = {f"{name} ({sum(counts.values()):,})": [counts.get(i, 0) / sum(counts.values()) for i in range(len(classes))]
              for name, counts in columns.items()}
    chart = bar_chart(classes, shares, y_title="share of items")
    report.add("Class balance before and after", _table(["class", *columns], rows) + _figure(report, chart))


def _detect_section(con: duckdb.DuckDBPyConnection, report: Report, run: str) -> None:
    detectors = [r[0] for r in con.execute("SELECT DISTINCT detector FROM noise_scores WHERE run_id = ? ORDER BY 1",
                                           [run]).fetchall()]
    counts = con.execute("SELECT detector, count(*), count(*) FILTER (WHERE is_issue) FROM noise_scores "
                         "WHERE run_id = ? GROUP BY detector ORDER BY detector", [run]).fetchall()
    body = _table(["detector", "labels checked", "flagged"], counts)
    summary = run_summary(con, run, "detect")
    skipped = summary.get("features", {}).get("skipped")
    if skipped:
        body += f"<p><b>Nothing checked</b>: {html.escape(skipped)}.</p>"
    for warning in [] if skipped else summary.get("warnings", []):
        used = "" if summary.get("flags_used", True) else " Its flags are not used (<code>detect.sanity: warn</code> uses them)."
        body += f"<p><b>Warning</b>: {html.escape(summary.get('use', ''))} {html.escape(warning)}.{used}</p>"
    for detector in detectors:
        scores = np.array(con.execute("SELECT score, is_issue FROM noise_scores WHERE run_id = ? AND detector = ?",
                                      [run, detector]).fetchall(), dtype=float)

        body += _figure(report, histogram({"kept": scores[scores[:, 1] == 0, 0], "flagged": scores[scores[:, 1] == 1, 0]},
                                          bins=np.linspace(0, 1, 41),
                                          x_title=f"{detector} score (lower = more likely mislabelled)"))
    report.add(f"Noise detection (detect run {run})", body)


def _weights_section(con: duckdb.DuckDBPyConnection, report: Report, runs: dict[str, str]) -> None:
    series, flagged = {}, {}
    for stage in ("detect", "reweight"):
        if stage in runs:
            rows = con.execute("SELECT method, weight, flagged FROM weights WHERE run_id = ? AND stage = ?",
                               [runs[stage], stage]).fetchall()
            if rows:
                series[f"{stage}: {rows[0][0]}"] = np.array([w for _, w, _ in rows], dtype=float)
                flagged[f"{stage}: {rows[0][0]}"] = sum(bool(f) for _, _, f in rows)
    if not series:
        return
    table = _table(["weights", "items", "mean", "flagged"],
                   [(k, len(v), float(v.mean()), flagged[k]) for k, v in series.items()])
    for stage in ("detect", "reweight"):
        shares = run_summary(con, runs[stage], stage).get("weights", {}) if stage in runs else {}
        if shares.get("share"):
            method = shares.get("method") or run_summary(con, runs[stage], stage).get("strategy", "")
            table += (f"<p>Each class's share of the items and of the {stage} weights ({html.escape(str(method))}, "
                      f"balance {html.escape(shares['balance'])}; unbalanced: the raw weights).</p>"
                      + _table(["class", "items", "weight", "weight, unbalanced"],
                               [(name, v["items"], v["weight"], v["weight_unbalanced"])
                                for name, v in shares["share"].items()]))

    top = max(1.0, *(float(w.max()) for w in series.values()))
    chart = histogram(series, bins=np.linspace(0, top, 41), x_title="per-item weight")
    report.add("Weight distribution", table + _figure(report, chart))


def _select_section(con: duckdb.DuckDBPyConnection, report: Report, run: str, classes: list[str]) -> None:
    summary = run_summary(con, run, "select")
    by_dataset = con.execute(
        "SELECT i.dataset, count(*), count(*) FILTER (WHERE s.selected) FROM selections s JOIN items i USING (item_id) "
        "WHERE s.run_id = ? GROUP BY i.dataset ORDER BY i.dataset", [run]).fetchall()
    body = (f"<p>Method {html.escape(str(summary.get('method', '')))} towards the target "
            f"{html.escape(str(summary.get('target', '')))} ({summary.get('n_target', 0):,} items): "
            f"{summary.get('n_selected', 0):,} of {summary.get('n_pool', 0):,} pool items selected.</p>"
            + _table(["dataset", "pool", "selected"], by_dataset))
    scores = np.array([r[0] for r in con.execute("SELECT score FROM selections WHERE run_id = ? AND score IS NOT NULL",
                                                 [run]).fetchall()], dtype=float)
    if scores.size:
        selected = np.array([r[0] for r in con.execute(
            "SELECT score FROM selections WHERE run_id = ? AND score IS NOT NULL AND selected", [run]).fetchall()])

        body += _figure(report, histogram({"pool": scores, "selected": selected},
                                          bins=np.linspace(scores.min(), scores.max() + 1e-9, 41),
                                          x_title="selection score (higher = more useful for the target)"))
    report.add(f"Selection (select run {run})", body)
