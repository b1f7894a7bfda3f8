"""The seed's entry point: `python main.py --env local --mode health` (same as `tagsys`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from tagsys.cli import main

if __name__ == "__main__":
    sys.exit(main())
