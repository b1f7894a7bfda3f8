"""The seed's Glue job script path; the same script as `tagsys.glue.job_script` (what the
deploy uploads). Locally: spark-submit environments/glue-ENV/glue_job.py --env local --mode task-all"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from tagsys.glue.job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
