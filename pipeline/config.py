"""The pipeline configuration file (YAML): one section per stage, validated with pydantic.

Relative paths in the file (every field typed ``ConfigPath`` or ``ObjectSpec``: sources, Python LF
files, the database, the export directory, ...) are resolved against the directory that holds the file,
so a config works from any working dir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from thresher.labeling.config import LabelingConfig
from thresher.reweighting.rescale.stage import ReweightConfig
from thresher.reweighting.select.stage import SelectConfig
from thresher.reweighting.detect.stage import DetectConfig
from thresher.storage.export import ExportConfig
from thresher.storage.ingest import IngestConfig, SourceConfig
from thresher.core.config import ConfigPath, StageConfig
from thresher.core.stages import NAMES, STAGES, stage_spec


class ConfigError(ValueError):
    """The configuration file is missing, not YAML, or does not validate."""


class DaskConfig(StageConfig):
    """Where heavy work runs in chunks (LF application, embeddings, prompts): a dask.distributed cluster
    via prefect-dask."""

    address: str | None = None  # a running scheduler, e.g. tcp://10.0.0.5:8786; None: a LocalCluster
    n_workers: int = Field(2, ge=1)  # LocalCluster only
    threads_per_worker: int = Field(1, ge=1)  # LocalCluster only
    chunk_rows: int = Field(250_000, ge=1)  # rows per chunk
    chunk_dir: ConfigPath | None = None  # where chunks are written; workers must read it (default: beside the db)


# Settings given once at the top level and copied into the sections that read them; a section that
# sets one differently is an error. The one list of values that cross sections (with export_defaults).
SHARED: dict[str, tuple[str, ...]] = {"classes": ("labeling",), "labels_from": ("detect", "reweight", "select", "export")}
OPTIONAL_SECTIONS = ("labeling", "reweight", "select")  # absent (or null): that stage does not run


def export_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """The export section with the defaults that follow the rest of the config (``data``, a config as
    written): ``weights_from`` is reweight's weights when that section exists, else detect's (none when
    ``stages`` runs neither); ``use_detect`` is off when ``stages`` leaves detect out; ``selected_only``
    is on when a select section exists. Settings that name a missing section are an error."""
    export = dict(data.get("export") or {})
    stages = data.get("stages")
    if isinstance(stages, list) and "detect" not in stages:
        export.setdefault("use_detect", False)
        if "reweight" not in stages:
            export.setdefault("weights_from", None)
    export.setdefault("weights_from", "reweight" if "reweight" in data else "detect")
    if export.get("selected_only") is None:
        export["selected_only"] = "select" in data
    if export["selected_only"] and "select" not in data:
        raise ValueError("export.selected_only is true but there is no 'select' section.")
    if export["weights_from"] == "reweight" and "reweight" not in data:
        raise ValueError("export.weights_from is 'reweight' but there is no 'reweight' section.")
    return export


class PipelineConfig(StageConfig):
    """Every stage's configuration. ``classes`` and ``labels_from`` are shared by the stages."""

    project: str = "thresher"  # the project's name (the deployment name's default)
    # the project database (DuckDB file), relative to the config file
    db: ConfigPath = Field("thresher.duckdb", validate_default=True)
    dask: DaskConfig | None = None  # None: everything in this process
    sql_snapshots: bool = True  # after each stage, copy what it wrote to Parquet for `thresher sql` during runs
    # How long a stage waits for a database that another process holds (a reader's query) before it
    # fails; THRESHER_DB_LOCK_TIMEOUT overrides it.
    db_lock_timeout: float = Field(600.0, ge=0)
    classes: list[str] = Field(min_length=2)  # class ids are positions; labels in data may be ids or these names
    # which labels are checked and exported: denoised (the LFs') or given (the data's)
    labels_from: Literal["denoised", "given"] = "denoised"
    sources: list[SourceConfig] = Field(min_length=1)  # the inputs the ingest stage reads
    # the label stage: LFs and the label model (absent: labels_from must be given)
    labeling: LabelingConfig | None = None
    detect: DetectConfig = DetectConfig()  # the detect stage: label issues and weights
    reweight: ReweightConfig | None = None  # the optional reweight stage: weights learned while training
    select: SelectConfig | None = None  # the optional select stage: the subset that serves a target
    export: ExportConfig = ExportConfig()  # the export stage: Parquet shards and a manifest
    # The stages a run executes, in pipeline order whatever the order here; default: ingest, detect
    # and export, and label, reweight and select when their sections are present.
    stages: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _share(cls, data: Any) -> Any:
        """Copy each :data:`SHARED` setting into the sections that read it, and fill the export's
        :func:`export_defaults`: the config's only cross-section values, declared there."""
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if not (k in OPTIONAL_SECTIONS and v is None)}  # None: absent
        for name, sections in SHARED.items():
            value = data.get(name, cls.model_fields[name].default)
            for section in sections:
                if section not in data and section in OPTIONAL_SECTIONS:
                    continue
                own = dict(data.get(section) or {})
                if own.get(name, value) != value:
                    raise ValueError(f"Set {name} once at the top level, not in '{section}'.")
                data[section] = {**own, name: value}
        data["export"] = export_defaults(data)
        return data

    @model_validator(mode="after")
    def _check(self) -> "PipelineConfig":
        if self.labels_from == "denoised" and self.labeling is None:
            raise ValueError("labels_from is 'denoised' but there is no 'labeling' section: add LFs or set labels_from: given.")
        for name in self.stages or []:
            if name not in NAMES:
                raise ValueError(f"stages lists {name!r}; the stages are {', '.join(NAMES)}.")
            if self.stage_config(name) is None:
                raise ValueError(f"stages lists {name!r} but there is no '{stage_spec(name).section}' section.")
        if self.stages is not None and len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stages lists a stage twice: {self.stages}")
        return self

    def ingest_config(self) -> IngestConfig:
        return IngestConfig(sources=self.sources, classes=self.classes)

    def stage_config(self, name: str) -> StageConfig | None:
        """The config of stage ``name`` (see :mod:`thresher.core.stages`); None when its section is absent."""
        spec = stage_spec(name)
        return self.ingest_config() if spec.section == "sources" else getattr(self, spec.section)

    def stage_names(self) -> list[str]:
        """The stages a run of this config executes, in order: those ``stages`` lists, or by default
        every stage whose section is present."""
        return [spec.name for spec in STAGES if self.stage_config(spec.name) is not None
                and (self.stages is None or spec.name in self.stages)]


def _validated(data: dict[str, Any], base: Path, *, db: str | None, out_dir: str | None) -> PipelineConfig:
    """``data`` validated with every path field (typed :data:`~thresher.core.config.ConfigPath` or
    :data:`~thresher.core.config.ObjectSpec`) relative to ``base``; ``db``/``out_dir`` override the file
    and are relative to the working directory, as command-line paths are."""
    data = dict(data)
    if db is not None:
        data["db"] = str(Path(db).absolute())
    if out_dir is not None:
        data["export"] = {**(data.get("export") or {}), "out_dir": str(Path(out_dir).absolute())}
    return PipelineConfig.model_validate(data, context={"base_dir": base})


def yaml_schema() -> dict[str, Any]:
    """The JSON schema of a config file as written: :class:`PipelineConfig`'s, except that a section's
    fields filled from the top level (the labeling section's ``classes``) are not required there."""
    schema = PipelineConfig.model_json_schema()
    for name, sections in SHARED.items():
        for section in sections:
            ref = _section_schema(schema, section)
            ref["required"] = [f for f in ref.get("required", []) if f != name]
            ref["properties"][name]["description"] = "Set once at the top level of the config."
    return schema


def _section_schema(schema: dict[str, Any], section: str) -> dict[str, Any]:
    """The definition of ``section`` in the pipeline's JSON schema (through its $ref, optional or not)."""
    prop = schema["properties"][section]
    ref = prop.get("$ref") or next(o["$ref"] for o in prop.get("anyOf", []) if "$ref" in o)
    return schema["$defs"][ref.rsplit("/", 1)[1]]


def config_from_dict(data: dict[str, Any], *, base_dir: str | Path = ".", db: str | None = None,
                     out_dir: str | None = None) -> PipelineConfig:
    """A pipeline config from the mapping a YAML file would hold; relative paths are relative to ``base_dir``."""
    if not isinstance(data, dict):
        raise ConfigError(f"A pipeline config must be a mapping, got {type(data).__name__}.")
    try:
        return _validated(data, Path(base_dir).resolve(), db=db, out_dir=out_dir)
    except ValidationError as exc:
        raise ConfigError("The pipeline config is invalid:\n" + "\n".join(_errors(exc, None))) from None


def _errors(exc: ValidationError, text: str | None) -> list[str]:
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        line = yaml_line(text, error["loc"]) if text is not None else None
        at = f"line {line}, " if line else ""
        given = f" (got {error['input']!r})" if not isinstance(error.get("input"), (dict, list)) else ""
        lines.append(f"  {at}{where}: {error['msg']}{given}")
    return lines


def load_config(path: str | Path, *, db: str | None = None, out_dir: str | None = None) -> PipelineConfig:
    """Read a pipeline YAML file; ``db`` and ``out_dir`` override the file (relative to the cwd)."""
    path = Path(path)
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(f"Config file '{path}' does not exist.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file '{path}' must be a YAML mapping, got {type(data).__name__}.")
    try:
        return _validated(data, path.resolve().parent, db=db, out_dir=out_dir)
    except ValidationError as exc:
        raise ConfigError("\n".join([f"Config file '{path}' is invalid:", *_errors(exc, text)])) from None


def yaml_line(text: str, loc: tuple) -> int | None:
    r"""The 1-based line of the deepest YAML node on the path ``loc`` (pydantic's error location).

    >>> text = "classes: [A, B]\nlabeling:\n  lfs:\n    - {kind: keyword, nam: x}\n"
    >>> yaml_line(text, ("labeling", "lfs", 0, "keyword", "nam"))
    4
    """
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                continue  # a pydantic-only step (a union member's tag)
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line
