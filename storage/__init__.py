"""Storage: the DuckDB project database (schema, ingest, run bookkeeping) and the shard export."""

from storage.export import ExportConfig, export
from storage.ingest import IngestConfig, SourceConfig, ingest
from storage.repo import latest_run, new_run_id, run_stage
from storage.schema import SCHEMA_VERSION, connect

__all__ = [
    "SCHEMA_VERSION", "connect", "IngestConfig", "SourceConfig", "ingest", "ExportConfig", "export",
    "latest_run", "new_run_id", "run_stage",
]
