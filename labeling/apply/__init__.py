"""LF application: SQL LFs in one DuckDB pass, Python LFs per item in batches."""

from thresher.lazy import lazy_exports

_EXPORTS = {
    "apply_sql_lfs": "labeling.apply.duckdb",
    "validate_sql_lfs": "labeling.apply.duckdb",
    "apply_python_lfs": "labeling.apply.python",
    "LFFaultError": "labeling.apply.python",
    "FaultReport": "labeling.apply.python",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
