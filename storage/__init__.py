"""Storage: the DuckDB project database (schema, ingest, run bookkeeping) and the shard export."""

from thresher.lazy import lazy_exports

_EXPORTS = {
    "SCHEMA_VERSION": "storage.schema",
    "connect": "storage.schema",
    "IngestConfig": "storage.ingest",
    "SourceConfig": "storage.ingest",
    "ingest": "storage.ingest",
    "ExportConfig": "storage.export",
    "export": "storage.export",
    "latest_run": "storage.repo",
    "new_run_id": "storage.repo",
    "run_stage": "storage.repo",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
