#!/usr/bin/env bash
# The seed's data commands, without Docker, on the configured store and lake
# (defaults: SQLite at ./data/tagsys.db, lake at ./data/lake; see TAGSYS_DB_URL, TAGSYS_LAKE_URI).
#   ./init_data.sh            schema + demo tags + demo lake (default)
#   ./init_data.sh reset      clean, then the default
#   ./init_data.sh clean      remove demo tags, user tags and the demo lake (schema stays)
#   ./init_data.sh db-only    schema + demo tags
#   ./init_data.sh data-only  demo lake only
# DEMO_USERS (default 10000) sets the number of users.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# TAGSYS_PYTHON: the interpreter to run (default ./.venv/bin/python, installed if missing)
PY="${TAGSYS_PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || { ./scripts/install.sh; }
USERS="${DEMO_USERS:-10000}"
run() { "$PY" main.py --env "${TAG_SYSTEM_ENV:-local}" "$@"; }

case "${1:-default}" in
  default)   run --mode init-db && run --mode generate-data --users "$USERS" ;;
  reset)     run --mode clean-data && run --mode init-db && run --mode generate-data --users "$USERS" ;;
  clean)     run --mode clean-data ;;
  db-only)   run --mode init-db ;;
  data-only) run --mode generate-data --users "$USERS" ;;
  *) echo "usage: $0 [reset|clean|db-only|data-only]" >&2; exit 2 ;;
esac
