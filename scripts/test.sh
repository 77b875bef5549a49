#!/usr/bin/env bash
# Set up a virtualenv with the pinned requirements and run the whole test suite.
# Usage: scripts/test.sh [pytest arguments]
# Two worker processes by default (pytest-xdist), each test file on one worker so
# that a file's shared lab bring-up stays shared; KSERVE_TEST_WORKERS=0 runs in
# this process (e.g. with a debugger), a larger number on a machine with more cores.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv venv
venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
exec venv/bin/python -m pytest -n "${KSERVE_TEST_WORKERS:-2}" --dist loadfile "$@"
