#!/usr/bin/env bash
# Install the product and its test tools into ./.venv (Python 3.11-3.13, Java 17 needed).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3, 11), (3, 12), (3, 13)) else 1)'; then
  echo "Error: Python 3.11-3.13 is needed (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  echo "Error: Java 17 is needed by Spark and was not found." >&2
  echo "  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless   (or set JAVA_HOME)" >&2
  exit 1
fi
# The console's browser tests drive Debian's Chromium (Playwright cannot download its own
# browser here); a CJK font makes the Chinese UI legible in its screenshots.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (for the console's browser tests)..."
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }; then
      echo "Warning: apt-get could not install chromium; the console's browser tests need it" >&2
    fi
  else
    echo "Warning: /usr/bin/chromium is missing, so the console's browser tests will be skipped;" >&2
    echo "  install it with: sudo apt-get install -y chromium fonts-wqy-microhei" >&2
  fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev,aws,service]"
