#!/usr/bin/env bash
# The reference GIO package's own environment (JAX, PySpark; Java from Debian): never thresher's.
#   bash benchmarks/gio_reference/setup.sh [VENV_DIR]   (default .venv-gio)
set -euo pipefail
VENV="${1:-.venv-gio}"
command -v java >/dev/null || { echo "GIO's package starts a Spark session: install Java (apt-get install default-jre-headless)" >&2; exit 1; }
python3 -m venv "$VENV"
# --no-deps: the package also requires sentence-transformers (and so torch), which only its
# embedding helper uses; the benchmark hands it embeddings.
"$VENV/bin/pip" install --no-deps grad-info-opt==0.1.2
"$VENV/bin/pip" install jax jaxlib pyspark numpy pandas
echo "reference environment ready: $VENV/bin/python"
