"""LF application: SQL LFs in one DuckDB pass, Python LFs per item in batches."""

from labeling.apply.duckdb import apply_sql_lfs, validate_sql_lfs
from labeling.apply.python import FaultReport, LFFaultError, apply_python_lfs

__all__ = ["apply_sql_lfs", "validate_sql_lfs", "apply_python_lfs", "LFFaultError", "FaultReport"]
