"""AWS Glue job script of tagsys (uploaded by `tagsys deploy` as `glue_job.py`).

Glue installs the tagsys wheel through --additional-python-modules; this file only hands
the job's arguments to it. Run arguments: --tag_mode (or the seed's --mode), --tag_ids 1,3,5,
--user_ids a,b, --days N, --as_of YYYY-MM-DD, --dry_run true; see the README's Glue section."""

import sys

from tagsys.glue.job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
