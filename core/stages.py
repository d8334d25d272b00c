"""The stage registry: the one list of stages, in order, that the CLI, the report, the run bookkeeping,
the flows and the Python API read.

A record names the stage, the section of the pipeline config that configures it, the upstream
stages whose latest runs it reads, and where its code is: a :class:`Stage` subclass in the stage's
own package, imported only when the stage runs (so this module imports no stage). Adding a stage is
one line here and one ``Stage`` subclass.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import duckdb

    from thresher.core.chunking import Chunking


class Summary(Protocol):
    """What a stage returns: its figures as JSON-able values (stored in ``runs.summary``)."""

    def as_dict(self) -> dict[str, Any]: ...


RETRY_DELAY_SECONDS = 5  # between a stage's retries on a transient error


@dataclass
class StageContext:
    """What a stage's ``run`` gets besides the database: its own config section and the shared settings.

    The stage sets ``input_run_id`` to the upstream run it read (recorded in ``runs.input_run_id``).
    """

    run_id: str
    config: Any  # the stage's section of the pipeline config (a StageConfig)
    classes: list[str]
    progress: bool = False
    chunking: Chunking | None = None
    input_run_id: str | None = None


class Stage(ABC):
    """A stage's code: ``run`` does the work; the other methods tell the runner how to cache and where to run it.

    The defaults suit a stage whose output depends only on its config and its upstream runs.
    """

    transient: tuple[type[BaseException], ...] = ()  # errors worth retrying (the network), see ``retries``

    @abstractmethod
    def run(self, con: duckdb.DuckDBPyConnection, context: StageContext) -> Summary:
        """Do the stage's work on ``con`` for ``context`` and return its summary."""

    def version(self, config: Any) -> str:
        """What keys the cache besides the inputs: the config's fingerprint (label adds its LFs' versions)."""
        return config.fingerprint()

    def cache_inputs(self, config: Any) -> dict[str, Any]:
        """Inputs outside the database that a run depends on (files: path, size, mtime)."""
        return {}

    def must_rerun(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Whether the last run left work undone, so an unchanged config must still run again."""
        return False

    def uses_cluster(self, config: Any) -> bool:
        """Whether the stage has work to chunk on a Dask cluster (a cluster is started only then)."""
        return False

    def retries(self, config: Any) -> int:
        """How many times the stage is retried on a ``transient`` error (by Prefect's task retries, or
        by :func:`thresher.pipeline.local.run_local`), ``RETRY_DELAY_SECONDS`` apart."""
        return 0

    def extra(self, con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
        """Fields read back from the database into the returned summary (the LF table), not stored in ``runs``."""
        return {}


@dataclass(frozen=True)
class StageSpec:
    """One stage of the pipeline: its name, config section, upstream stages and code (``module:Class``)."""

    name: str
    section: str  # the PipelineConfig field that configures it
    upstream: tuple[str, ...] | None  # None: its cache key leaves the database out (ingest writes the items)
    code: str
    optional: bool  # runs only when its section is in the config
    cached: bool = True  # an unchanged stage (config and inputs) is reused instead of recomputed
    summary: str = field(default="")  # the summary class, ``module:Class``
    help: str = ""  # what the stage does, in a line: its CLI command's help and its flow's description

    def load(self) -> Stage:
        module, _, name = self.code.partition(":")
        return getattr(importlib.import_module(module), name)()


STAGES: tuple[StageSpec, ...] = (
    StageSpec("ingest", "sources", None, "thresher.storage.ingest:IngestStage", optional=False,
              summary="thresher.storage.ingest:IngestSummary",
              help="Load the configured sources into the database; bad rows go to the rejects table."),
    StageSpec("label", "labeling", (), "thresher.labeling.stage:LabelStage", optional=True,
              summary="thresher.labeling.stage:LabelSummary",
              help="Apply the labeling functions and denoise their votes with the label model."),
    StageSpec("detect", "detect", ("label",), "thresher.reweighting.detect.stage:DetectStage", optional=False,
              summary="thresher.reweighting.detect.stage:DetectSummary",
              help="Find label issues (cleanlab confident learning and the other detectors) and compute per-item weights."),
    StageSpec("reweight", "reweight", ("label",), "thresher.reweighting.rescale.stage:ReweightStage", optional=True,
              summary="thresher.reweighting.rescale.stage:ReweightSummary",
              help="Learn per-item loss weights while training (STORM, loss rules or uniform); see 'reweight' in the config."),
    StageSpec("select", "select", ("label", "detect"), "thresher.reweighting.select.stage:SelectStage", optional=True,
              summary="thresher.reweighting.select.stage:SelectSummary",
              help="Choose the training subset that serves a target set (CoLoR-Filter, GIO or random); see 'select' in the config."),
    # Never cached: the shards on disk may have been moved or deleted since; exporting is cheap.
    StageSpec("export", "export", (), "thresher.pipeline.export_stage:CuratedExportStage", optional=False, cached=False,
              summary="thresher.storage.export:ExportSummary",
              help="Write the curated set as Parquet shards with a manifest for training workers."),
)
NAMES: tuple[str, ...] = tuple(spec.name for spec in STAGES)


def file_state(path: str | Path) -> list[Any]:
    """(path, size, mtime in ns) of an input file: what a stage's cache key holds for it."""
    stat = os.stat(path)
    return [str(path), stat.st_size, stat.st_mtime_ns]


def stage_spec(name: str) -> StageSpec:
    """The registry record of stage ``name``."""
    for spec in STAGES:
        if spec.name == name:
            return spec
    raise ValueError(f"The 'stage' parameter must be one of {NAMES}. Got {name!r} instead.")
