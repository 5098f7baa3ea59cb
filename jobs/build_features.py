"""spark-submit entry point: hits → visit (or user) feature table.

    spark-submit --py-files visitseg.zip jobs/build_features.py --input-format ga360 --input PATH --output DIR
"""

import sys

from visitseg.cli import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
