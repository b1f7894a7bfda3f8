#!/usr/bin/env bash
# Fresh machine to tagged users: install, build the demo lake and tags, run the main job
# on the embedded default store (SQLite under ./data, no server needed).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
USERS="${DEMO_USERS:-10000}"
.venv/bin/python main.py --env local --mode demo --users "$USERS"
.venv/bin/python main.py --env local --mode health
.venv/bin/python main.py --env local --mode list-tasks
.venv/bin/python main.py --env local --mode task-all
