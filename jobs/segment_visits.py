"""spark-submit entry point: the whole job (features, K sweep, final model, every output table).

    spark-submit --py-files visitseg.zip jobs/segment_visits.py --input-format ga360 --input PATH --output DIR [--config FILE] [--set k=v ...]
"""

import sys

from visitseg.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
