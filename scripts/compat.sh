#!/usr/bin/env bash
# The AWS Glue version matrix: build one virtual environment per Glue runtime and run a small
# set of end-to-end tests in each (the main suite runs on .venv, Python 3.11 + the newest PySpark).
#   .venv-glue6  Python 3.13 + pyspark 4.1.1   (AWS Glue 6.0)
#   .venv-glue5  Python 3.11 + pyspark 3.5.6   (AWS Glue 5.0 / 5.1)
# Usage: scripts/compat.sh [glue6|glue5 ...]   (default: both). Needs a MariaDB like test.sh.
# PYTHON313 / PYTHON311 choose the interpreters. Timing goes to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON313="${PYTHON313:-/root/.pyenv/versions/3.13.0/bin/python3.13}"
command -v "$PYTHON313" >/dev/null 2>&1 || PYTHON313=python3.13
PYTHON311="${PYTHON311:-python3.11}"

# The end-to-end tests of the matrix: the demo run against the reference and the hidden-lake
# runs (every mode against an independently computed reference), on SQLite and MariaDB, and the
# Spark session. COMPAT_TESTS replaces the list (e.g. to add tests/glue/test_job_script.py).
read -r -a TESTS <<< "${COMPAT_TESTS:-tests/engine/test_demo.py tests/engine/test_run.py tests/test_spark.py}"

build() {  # name python pins...
  local name="$1" python="$2"; shift 2
  local venv=".venv-$name"
  if ! command -v "$python" >/dev/null 2>&1; then
    echo "Error: $python not found for $venv; set PYTHON313/PYTHON311" >&2
    exit 1
  fi
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  # -e: the same source tree; the pins replace the main environment's PySpark.
  "$venv/bin/python" -m pip install --quiet -e ".[dev,aws,service]" "$@"
}

run() {  # name
  local venv=".venv-$1" start=$SECONDS
  echo "== $1: $("$venv/bin/python" --version), pyspark $("$venv/bin/python" -c 'import pyspark; print(pyspark.__version__)')"
  "$venv/bin/python" -m pytest -p no:cacheprovider -q "${TESTS[@]}"
  echo "== $1: tests took $((SECONDS - start)) s"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(glue6 glue5)
total=$SECONDS
for target in "${targets[@]}"; do
  start=$SECONDS
  case "$target" in
    glue6) build glue6 "$PYTHON313" "pyspark==4.1.1" "pandas<3" ;;
    glue5) build glue5 "$PYTHON311" "pyspark==3.5.6" "pandas<3" "numpy>=2,<3" ;;
    *) echo "Error: unknown target '$target'; use glue6 or glue5" >&2; exit 2 ;;
  esac
  echo "== $target: environment ready in $((SECONDS - start)) s"
  run "$target"
done
echo "== compat matrix took $((SECONDS - total)) s"
