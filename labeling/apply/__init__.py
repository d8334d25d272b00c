"""LF application: SQL LFs in one DuckDB pass, Python LFs per item in batches."""

from thresher.core.lazy import lazy_exports

_EXPORTS = {
    "apply_sql_lfs": "thresher.labeling.apply.duckdb",
    "validate_sql_lfs": "thresher.labeling.apply.duckdb",
    "apply_python_lfs": "thresher.labeling.apply.python",
    "LFFaultError": "thresher.labeling.apply.python",
    "FaultReport": "thresher.labeling.apply.python",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
