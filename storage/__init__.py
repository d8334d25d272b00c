"""Storage: the DuckDB project database (schema, ingest, run bookkeeping) and the shard export."""

from thresher.core.lazy import lazy_exports

_EXPORTS = {
    "SCHEMA_VERSION": "thresher.storage.schema",
    "connect": "thresher.storage.schema",
    "IngestConfig": "thresher.storage.ingest",
    "SourceConfig": "thresher.storage.ingest",
    "ingest": "thresher.storage.ingest",
    "ExportConfig": "thresher.storage.export",
    "export": "thresher.storage.export",
    "latest_run": "thresher.storage.repo",
    "new_run_id": "thresher.storage.repo",
    "run_stage": "thresher.storage.repo",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
