"""``thresher check``: the whole config validated in about a second, before any heavy import or flow.

Beyond the schema (:func:`thresher.pipeline.config.load_config`) it checks what would otherwise fail only
when a stage reaches it: each source matches files whose columns hold the mapped text, label,
gold, id and split columns (read from a sample of rows); every LF builds (regexes compile, lookup
and rule files read), SQL LFs and regexes compile in DuckDB against the items' columns, Python LF
files exist, parse and define the named object (read with ``ast``, not imported: an LF module may
import torch), and LF names are unique. Every problem is listed, not just the first.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from thresher.pipeline.config import ConfigError, PipelineConfig, load_config
from thresher.storage.ingest import SourceConfig

MAX_FILES_SAMPLED = 5  # per source: the first and last files of a large glob, and a few between


@dataclass
class CheckReport:
    """What a config names, once checked."""

    config: PipelineConfig
    files: dict[str, int] = field(default_factory=dict)  # source path -> files matched
    lfs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _sampled(files: list[Path]) -> list[Path]:
    if len(files) <= MAX_FILES_SAMPLED:
        return files
    step = (len(files) - 1) / (MAX_FILES_SAMPLED - 1)
    return [files[round(i * step)] for i in range(MAX_FILES_SAMPLED)]


def _check_sources(config: PipelineConfig, report: CheckReport) -> None:
    from thresher.storage.columns import listing, missing_columns, sample_columns
    from thresher.storage.ingest import expand_paths

    for source in config.sources:
        try:
            files = expand_paths(source)
        except FileNotFoundError as exc:
            report.problems.append(str(exc))
            continue
        report.files[source.path] = len(files)
        missing: dict[tuple[str, str], list[tuple[Path, set[str]]]] = {}
        sampled = _sampled(files)
        for path in sampled:
            try:
                found = sample_columns(path, source.resolved_format(path), source)
            except (OSError, ValueError) as exc:
                report.problems.append(f"source '{source.path}': cannot read '{path}': {exc}")
                continue
            for pair in missing_columns(source, path, found):
                missing.setdefault(pair, []).append((path, found))
        for (role, name), where in missing.items():
            path, found = where[0]
            files_text = f"'{path.name}'" if len(where) == 1 else f"{len(where)} of the {len(sampled)} files sampled"
            report.problems.append(f"source '{source.path}': the {role} column '{name}' is not in {files_text}; "
                                   f"the columns of '{path.name}' are: {listing(found)}")
        if source.answers is not None:
            _check_answers(source, report)


def _check_answers(source: SourceConfig, report: CheckReport) -> None:
    """The answers file of ``source`` exists and has its item, worker and answer columns."""
    from thresher.storage.ingest import answers_source
    from thresher.storage.columns import listing, sample_columns

    path = Path(source.answers.path)
    if not path.is_file():
        report.problems.append(f"source '{source.path}': the answers file '{path}' does not exist")
        return
    config = answers_source(source)
    try:
        found = sample_columns(path, config.resolved_format(path), config)
    except (OSError, ValueError) as exc:
        report.problems.append(f"source '{source.path}': cannot read the answers file '{path}': {exc}")
        return
    columns = source.answers.columns
    for role in ("item", "worker", "answer"):
        if getattr(columns, role) not in found:
            report.problems.append(f"source '{source.path}': the answers' {role} column '{getattr(columns, role)}' "
                                   f"is not in '{path.name}'; its columns are: {listing(found)}")


def _defined_names(tree: ast.Module) -> dict[str, str]:
    """Top-level names a module defines, each with the LF name it would get (Snorkel's ``name=``)."""
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            lf_name = node.name
            for decorator in getattr(node, "decorator_list", []):
                if isinstance(decorator, ast.Call):
                    for keyword in decorator.keywords:
                        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                            lf_name = str(keyword.value.value)
            names[node.name] = lf_name
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        names[leaf.id] = leaf.id
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                names[bound] = bound
    return names


def python_lf_problem(function: str) -> tuple[str | None, str | None]:
    """(the LF's likely name, None) if ``file.py:name`` / ``module:name`` defines ``name``; else (None, problem)."""
    target, sep, attr = function.rpartition(":")
    if not sep or not target or not attr:
        return None, f"Python LF {function!r}: give it as 'file.py:name' or 'package.module:name'"
    if target.endswith(".py"):
        path = Path(target)
    else:
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError) as exc:
            return None, f"Python LF {function!r}: cannot find module {target!r} ({exc})"
        if spec is None:
            return None, f"Python LF {function!r}: no module named {target!r}"
        if not spec.origin or not spec.origin.endswith(".py"):
            return attr, None  # a compiled or namespace module: only importing it can tell
        path = Path(spec.origin)
    if not path.is_file():
        return None, f"Python LF {function!r}: the file '{path}' does not exist"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        return None, f"Python LF {function!r}: '{path}' does not parse: {exc}"
    names = _defined_names(tree)
    if attr not in names and "*" not in names:
        defined = sorted(n for n in names if not n.startswith("_"))
        return None, f"Python LF {function!r}: '{path.name}' defines no {attr!r}; it defines: {defined}"
    return names.get(attr, attr), None


def _check_lfs(config: PipelineConfig, report: CheckReport) -> None:
    import duckdb

    from thresher.labeling.apply.duckdb import validate_sql_lfs
    from thresher.labeling.config import PythonLFConfig
    from thresher.labeling.lf import LabelingFunction
    from thresher.storage.schema import migrate

    labeling = config.labeling
    assert labeling is not None
    built: list[LabelingFunction] = []
    for spec in labeling.lfs:
        if isinstance(spec, PythonLFConfig):
            name, problem = python_lf_problem(spec.function)
            if problem:
                report.problems.append(problem)
            else:
                report.lfs.append(spec.name or name or spec.function)
            continue
        try:
            lfs = labeling.build_spec(spec)
        except (OSError, ValueError, LookupError) as exc:
            report.problems.append(f"LF {getattr(spec, 'name', None) or getattr(spec, 'path', '')!r}: {exc}")
            continue
        report.lfs += [lf.name for lf in lfs]
        built += [lf for lf in lfs if isinstance(lf, LabelingFunction) and lf.sql("text") is not None]
    duplicates = sorted({n for n in report.lfs if report.lfs.count(n) > 1})
    if duplicates:
        report.problems.append(f"LF names must be unique. These appear more than once: {duplicates}")
    con = duckdb.connect()
    try:
        migrate(con)  # the real (empty) items table: SQL LFs compile against its columns
        for lf in built:
            try:
                validate_sql_lfs(con, [lf])
            except ValueError as exc:
                report.problems.append(str(exc))
    finally:
        con.close()


def _check_db(config: PipelineConfig, report: CheckReport) -> None:
    """The project database, when it exists, is a thresher database this version can open: opened
    read-only (nothing written, nothing migrated); one another process is writing is not checked."""
    import duckdb

    from thresher.storage.schema import SCHEMA_VERSION, schema_version

    path = Path(config.db)
    if not path.exists():
        return
    if path.is_dir():
        report.problems.append(f"db '{path}' is a directory, not a database file")
        return
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            return  # a stage is writing it now: it is a database, and it is in use
        report.problems.append(f"db '{path}' is not a DuckDB database ({str(exc).splitlines()[0]}); point db at a "
                               "thresher database or a new file")
        return
    try:
        version = schema_version(con)
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
    finally:
        con.close()
    if version > SCHEMA_VERSION:
        report.problems.append(f"db '{path}' has schema version {version}, newer than this thresher's {SCHEMA_VERSION}: "
                               "upgrade thresher to use it")
    elif version == 0 and tables:
        shown = ", ".join(tables[:10]) + (f", ... ({len(tables)} in all)" if len(tables) > 10 else "")
        report.problems.append(f"db '{path}' is a DuckDB database but not a thresher project (tables: {shown}); "
                               "thresher would add its tables to it: point db at a new file")


def check_config(path: str | Path, *, db: str | None = None, out_dir: str | None = None) -> CheckReport:
    """Validate the config at ``path`` as a run would use it; raise one :class:`ConfigError` listing every problem."""
    config = load_config(path, db=db, out_dir=out_dir)
    report = CheckReport(config)
    _check_db(config, report)
    _check_sources(config, report)
    if config.labeling is not None:
        _check_lfs(config, report)
    if report.problems:
        listed = "\n".join(f"  - {p}" for p in report.problems)
        raise ConfigError(f"Config file '{path}' has {len(report.problems)} problem(s):\n{listed}")
    return report
