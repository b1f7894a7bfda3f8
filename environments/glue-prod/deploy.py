"""The seed's deploy step: `cd environments/glue-prod && python deploy.py` is
`tagsys deploy --env glue-prod` (options pass through: --dry-run, --yes, --glue-version)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from tagsys.cli import main

if __name__ == "__main__":
    sys.exit(main(["deploy", "--env", "glue-prod", *sys.argv[1:]]))
