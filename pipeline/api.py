"""The Python API: run the pipeline, or one stage, from a notebook, and get the results as DataFrames::

    import thresher

    pipe = thresher.Pipeline({"classes": ["HAM", "SPAM"], "labeling": {"lfs": [...]}},
                             data=frame, columns={"text": "CONTENT", "gold": "CLASS"})
    result = pipe.run()
    result.labels.head()       # item_id, text, label, label_name, probs, confidence, ...

It runs the same stages as ``thresher run`` (the stage registry, :func:`thresher.pipeline.runner.run_stage`)
in this process, without Prefect, and records every run in the project database as the CLI does,
so ``thresher sql``, ``thresher report`` and a later CLI run see it. Unchanged stages are reused.
A DataFrame or Arrow table given as ``data`` is written once (named by its content hash) as a
Parquet file beside the database and ingested as one more source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thresher.core.stages import NAMES
from pydantic import ValidationError

from thresher.pipeline.config import ConfigError, PipelineConfig, config_from_dict, load_config

if TYPE_CHECKING:
    import pandas as pd


# The id as the user's source gave it: item_id without its "dataset:" prefix (items i joined).
YOUR_ID = "substr(i.item_id, length(i.dataset) + 2) AS id"


@dataclass
class RunResult:
    """One pipeline run: its id, each stage's summary, and that run's outputs as DataFrames, read from
    the database when first used and kept (a later run does not change them). A stage the run reused
    gives the outputs of the run it reused."""

    run_id: str
    summaries: dict[str, dict[str, Any]]
    pipeline: Pipeline = field(repr=False)
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, init=False, repr=False)

    def _frame(self, output: str, stage: str) -> pd.DataFrame:
        if output not in self._frames:
            if stage not in self.summaries:
                raise LookupError(f"This run has no {stage} stage (its stages: {', '.join(self.summaries)}).")
            self._frames[output] = getattr(self.pipeline, output)(run_id=self.summaries[stage]["run_id"])
        return self._frames[output]

    @property
    def labels(self) -> pd.DataFrame:
        return self._frame("labels", "label")

    @property
    def noise_scores(self) -> pd.DataFrame:
        return self._frame("noise_scores", "detect")

    @property
    def weights(self) -> pd.DataFrame:
        return self._frame("weights", self.pipeline.weight_stage)

    @property
    def selection(self) -> pd.DataFrame:
        return self._frame("selection", "select")


class Pipeline:
    """A pipeline config and its project database, driven from Python.

    ``config``: a :class:`~thresher.pipeline.config.PipelineConfig`, a dict shaped like the YAML file
    (relative paths relative to ``base_dir``), or the path of a YAML file. ``data``: rows to ingest
    besides the config's sources (a pandas DataFrame or an Arrow table), mapped by ``columns`` (as a
    source's ``columns``), as ``dataset`` and ``split``.

    Your own parts, as objects (see "Bring your own model" in the README): ``estimator``, a scikit-learn
    classifier for detect's out-of-fold probabilities (``detect.estimator``); ``detectors``, more
    detectors by name (objects meeting the detector contract, or scikit-learn classifiers), added to the
    configured ones; ``label_model``, the label model (``labeling.model.model``). Each is copied before a
    run, never fitted in place; check one with :mod:`thresher.testing`.
    """

    def __init__(self, config: PipelineConfig | dict[str, Any] | str | Path, *, data: Any = None,
                 columns: dict[str, Any] | None = None, dataset: str = "data", split: str | None = None,
                 db: str | None = None, out_dir: str | None = None, base_dir: str | Path = ".",
                 estimator: Any = None, detectors: dict[str, Any] | None = None, label_model: Any = None) -> None:
        if isinstance(config, (str, Path)):
            config = load_config(config, db=db, out_dir=out_dir)
        elif isinstance(config, dict):
            config = config_from_dict(self._with_data(config, data, columns, dataset, split, base_dir, db),
                                      base_dir=base_dir, db=db, out_dir=out_dir)
            data = None
        elif not isinstance(config, PipelineConfig):
            raise TypeError(f"The 'config' parameter of Pipeline must be a PipelineConfig, a dict or a path. "
                            f"Got {type(config).__name__} instead.")
        if data is not None:
            source = self._data_source(data, columns, dataset, split, Path(config.db).parent)
            config = PipelineConfig.model_validate({**config.model_dump(), "sources": [
                *[s.model_dump() for s in config.sources], source]})
        self.config = self._with_parts(config, estimator, detectors, label_model)

    @staticmethod
    def _with_parts(config: PipelineConfig, estimator: Any, detectors: dict[str, Any] | None,
                    label_model: Any) -> PipelineConfig:
        """``config`` with the user's own objects in the sections that take them."""
        if estimator is None and not detectors and label_model is None:
            return config
        data = config.model_dump(exclude_unset=False)
        if estimator is not None:
            data["detect"]["estimator"] = estimator
        if detectors:
            if not isinstance(detectors, dict):
                raise TypeError(f"The 'detectors' parameter of Pipeline must be a dict of name -> detector. "
                                f"Got {type(detectors).__name__} instead.")
            data["detect"]["detectors"] = {**data["detect"]["detectors"], **detectors}
        if label_model is not None:
            if data.get("labeling") is None:
                raise ValueError("label_model was given but the config has no 'labeling' section to use it in.")
            data["labeling"]["model"] = {**data["labeling"]["model"], "model": label_model}
        try:
            return PipelineConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError("The pipeline config is invalid:\n" + str(exc)) from None

    @staticmethod
    def _with_data(config: dict[str, Any], data: Any, columns: dict[str, Any] | None, dataset: str,
                   split: str | None, base_dir: str | Path, db: str | None) -> dict[str, Any]:
        if data is None:
            return config
        database = Path(db if db is not None else Path(base_dir) / config.get("db", "thresher.duckdb"))
        source = Pipeline._data_source(data, columns, dataset, split, database.resolve().parent)
        return {**config, "sources": [*(config.get("sources") or []), source]}

    @staticmethod
    def _data_source(data: Any, columns: dict[str, Any] | None, dataset: str, split: str | None,
                     directory: Path) -> dict[str, Any]:
        """Write ``data`` as Parquet under ``directory``/inputs (once per content) and name it as a source."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not isinstance(data, pa.Table):
            try:
                data = pa.Table.from_pandas(data, preserve_index=False)
            except Exception as exc:
                raise TypeError(f"The 'data' parameter of Pipeline must be a pandas DataFrame or an Arrow table. "
                                f"Got {type(data).__name__} instead ({exc}).") from None
        sink = pa.BufferOutputStream()
        pq.write_table(data, sink)
        payload = sink.getvalue().to_pybytes()
        path = directory / "inputs" / f"{dataset}-{hashlib.sha256(payload).hexdigest()[:16]}.parquet"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(".tmp").write_bytes(payload)
            path.with_suffix(".tmp").replace(path)
        source: dict[str, Any] = {"path": str(path), "format": "parquet", "dataset": dataset,
                                  "columns": columns or {}}
        if split is not None:
            source["split"] = split
        return source

    def run(self, *, force: bool = False, progress: bool = False) -> RunResult:
        """Every configured stage, in order, under one run id (unchanged stages reused unless ``force``)."""
        from thresher.storage.repo import new_run_id

        run_id = new_run_id()
        summaries = {name: self.run_stage(name, run_id=run_id, force=force, progress=progress)
                     for name in self.config.stage_names()}
        return RunResult(run_id, summaries, self)

    def run_stage(self, name: str, *, run_id: str | None = None, force: bool = False,
                  progress: bool = False) -> dict[str, Any]:
        """Run one stage (``ingest``, ``label``, ...) on the latest outputs of the ones before it; its summary."""
        from thresher.pipeline.local import run_stage_retrying
        from thresher.storage.repo import new_run_id

        if name not in NAMES:
            raise ValueError(f"The 'name' parameter of run_stage must be one of {NAMES}. Got {name!r} instead.")
        return run_stage_retrying(self.config, name, run_id=run_id or new_run_id(), force=force, progress=progress)

    def sql(self, query: str) -> pd.DataFrame:
        """A read-only query on the project database, as a DataFrame (statements that write are refused)."""
        from thresher.storage.schema import connect
        from thresher.storage.sql import lock_down, read_statements, run_read_only

        import pandas as pd

        read_statements(query)
        con = connect(self.config.db, read_only=True)
        try:
            lock_down(con, allowed_directories=[])
            columns, rows = run_read_only(con, query)
        finally:
            con.close()
        return pd.DataFrame(rows, columns=columns)

    def _of_run(self, stage: str, run_id: str | None, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """``query`` with run ``run_id`` of ``stage`` (default: its latest completed run) as its first
        parameter, then ``params``: every user value is bound, never spliced into the SQL."""
        from thresher.storage.repo import latest_run
        from thresher.storage.schema import connect

        con = connect(self.config.db, read_only=True)
        try:
            return con.execute(query, [run_id or latest_run(con, stage), *(params or [])]).df()
        finally:
            con.close()

    def labels(self, *, run_id: str | None = None) -> pd.DataFrame:
        """The denoised labels of label run ``run_id`` (default: the latest), from the ``labelled`` view: item,
        its id as the source gave it (``id``: join your DataFrame on it), split, text, label id, whether it was
        decided (an LF voted and it is not a tie under tie_break: abstain), label name, class probabilities,
        confidence, entropy, whether an LF voted (covered), and the gold label."""
        return self._of_run("label", run_id, "SELECT l.item_id, l.id, l.split, i.text, l.label, l.decided, l.label_name, "
                                             "l.probs, l.confidence, l.entropy, l.covered, l.gold FROM labelled l "
                                             "JOIN items i USING (item_id) WHERE l.run_id = $1 ORDER BY l.item_id")

    def noise_scores(self, *, run_id: str | None = None) -> pd.DataFrame:
        """Detect run ``run_id`` (default: the latest): one row per item and detector (score: lower = more
        likely mislabelled)."""
        return self._of_run("detect", run_id, f"SELECT n.item_id, {YOUR_ID}, n.detector, n.score, n.is_issue "
                                              "FROM noise_scores n JOIN items i USING (item_id) "
                                              "WHERE n.run_id = ? ORDER BY n.detector, n.item_id")

    @property
    def weight_stage(self) -> str:
        """The stage whose weights the export uses: reweight when configured so, else detect."""
        return "reweight" if self.config.export.weights_from == "reweight" else "detect"

    def weights(self, *, run_id: str | None = None) -> pd.DataFrame:
        """The per-item weights the export uses, of run ``run_id`` of :attr:`weight_stage` (default: its latest)."""
        return self._of_run(self.weight_stage, run_id, f"SELECT w.item_id, {YOUR_ID}, w.* EXCLUDE (run_id, stage, item_id) "
                                                       "FROM weights w JOIN items i USING (item_id) "
                                                       "WHERE w.run_id = $1 AND w.stage = $2 ORDER BY w.item_id",
                            [self.weight_stage])

    def selection(self, *, run_id: str | None = None) -> pd.DataFrame:
        """Select run ``run_id`` (default: the latest): every pool item with its score, whether it was chosen,
        and its rank."""
        return self._of_run("select", run_id, f"SELECT s.item_id, {YOUR_ID}, s.* EXCLUDE (run_id, item_id) "
                                              "FROM selections s JOIN items i USING (item_id) WHERE s.run_id = ? "
                                              "ORDER BY s.rank NULLS LAST, s.item_id")
