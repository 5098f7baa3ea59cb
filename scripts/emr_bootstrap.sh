#!/usr/bin/env bash
# EMR 7.x bootstrap action (every node): Python 3.11 for PySpark (EMR 7's default python3 is 3.9, below
# visitseg's 3.10) and the packages visitseg's driver imports. Executors run only JVM code, but in cluster
# deploy mode the driver may land on any node, so every node gets them.
set -euo pipefail
sudo dnf install -y -q python3.11 python3.11-pip
sudo python3.11 -m pip install -q "deltalake>=1.1,<2" "pyarrow>=15" "pandas>=2.0,<3" "numpy>=1.26"
