#!/usr/bin/env bash
# Local set-up without Docker: installs the product into ./.venv and migrates the store.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
./scripts/install.sh
.venv/bin/python main.py --env local --mode migrate
