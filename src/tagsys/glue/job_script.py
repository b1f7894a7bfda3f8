"""AWS Glue job script of tagsys (uploaded by `tagsys deploy` as `glue_job.py`).

Glue installs the tagsys wheel through --additional-python-modules; this file only hands
the job's arguments to it. Run arguments: --tag_mode (or the seed's --mode), --tag_ids 1,3,5,
--user_ids a,b, --days N, --as_of YYYY-MM-DD, --dry_run true; see the README's Glue section."""

import os
import sys

# Run from a checkout (spark-submit src/tagsys/glue/job_script.py), this folder would be first
# on sys.path and its modules would shadow top-level ones: import tagsys as a package instead.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

from tagsys.glue.job import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv))
