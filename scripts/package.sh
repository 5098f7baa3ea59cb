#!/usr/bin/env bash
# Builds the spark-submit artifacts into ${1:-dist}/:
#   visitseg.zip                    the package for --py-files (Spark's docs: .py/.zip/.egg, not wheels)
#   visitseg-<version>-py3-none-any.whl  for installing on cluster images
# Usage: scripts/package.sh [DIR]; then
#   spark-submit --py-files DIR/visitseg.zip jobs/segment_visits.py --input-format ga360 --input PATH --output OUT
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo "$PWD/.venv/bin/python" || command -v python3 )}

rm -f "$out/visitseg.zip" "$out"/visitseg-*.whl
(cd lib && "$python" - "$out/visitseg.zip" <<'PY'
import pathlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as zf:
    for path in sorted(pathlib.Path("visitseg").rglob("*.py")):
        zf.write(path)
PY
)
"$python" -m pip wheel -q --no-deps -w "$out" . 2>&1 | grep -v "^WARNING: Location" || true
ls "$out"/visitseg-*.whl >/dev/null
echo "$out/visitseg.zip"
