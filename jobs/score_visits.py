"""spark-submit entry point: score visits with a saved model into DIR/session_scores (no refit).

    spark-submit --py-files visitseg.zip jobs/score_visits.py --model DIR/models/<run_id>|latest --input-format ga4 --input PATH --output DIR [--config FILE] [--set k=v ...]
"""

import sys

from visitseg.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
