#!/usr/bin/env bash
# Set up a virtualenv with the pinned requirements and run the whole test suite.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv venv
venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
exec venv/bin/python -m pytest "$@"
