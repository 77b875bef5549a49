import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts", ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# The SSH lab's `lab` fixture, for every test module that asks for it; the
# upstream-source marks (skip, or fail with KSERVE_UPSTREAM_REQUIRED=1); and the
# check that the session leaves the working tree as it found it.
pytest_plugins = ["lab.fixtures", "upstream_needs", "tree_guard"]
