#!/usr/bin/env bash
# Install, make sure a MariaDB server answers, and run the whole test suite.
# Tests use TAGSYS_TEST_MYSQL_URL (default mysql+pymysql://root@127.0.0.1:3306) and create
# and drop their own databases.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh

if [ -z "${TAGSYS_TEST_MYSQL_URL:-}" ]; then
  if ! .venv/bin/python - <<'PY' 2>/dev/null
import pymysql
pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=2).close()
PY
  then
    if [ -x /usr/sbin/mariadbd ]; then
      echo "starting MariaDB..."
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
      for _ in $(seq 1 60); do
        .venv/bin/python -c 'import pymysql; pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=2).close()' 2>/dev/null && break
        sleep 1
      done
    else
      echo "Error: no MariaDB/MySQL server on 127.0.0.1:3306 and none installed here;" >&2
      echo "  install mariadb-server, or set TAGSYS_TEST_MYSQL_URL=mysql+pymysql://user:pw@host:port" >&2
      exit 1
    fi
  fi
fi

.venv/bin/ruff check .
.venv/bin/mypy
# The README's test command is CI's: a browser test never skips here, it fails with the reason.
export TAGSYS_TEST_REQUIRE_BROWSER=1
.venv/bin/python -m pytest -p no:cacheprovider -q "$@"

# The AWS Glue version matrix (Glue 6: Python 3.13 + PySpark 4.1.1; Glue 5: Python 3.11 +
# PySpark 3.5) on a selected set of end-to-end tests; skipped for a targeted run (arguments
# given) or with TAGSYS_SKIP_COMPAT=1.
if [ $# -eq 0 ] && [ -z "${TAGSYS_SKIP_COMPAT:-}" ]; then
  ./scripts/compat.sh
fi
