#!/usr/bin/env bash
# Set up a virtualenv with the pinned requirements and run the whole test suite.
# Usage: scripts/test.sh [pytest arguments]
# Three worker processes by default (pytest-xdist; the SSH lab mostly waits, so three
# keep two cores busy), each test file on one worker so that a file's shared lab
# bring-up stays shared. KSERVE_TEST_WORKERS=0 runs in this process (a debugger, -s).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv venv
venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
exec venv/bin/python -m pytest -n "${KSERVE_TEST_WORKERS:-3}" --dist loadfile "$@"
