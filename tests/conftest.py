import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts", ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# Under pytest-xdist (scripts/test.sh runs three workers) each worker runs its SSH lab on
# loopback addresses of its own: worker gwN takes the third octet N above the usual
# one (127.0.10. for gw0, 127.0.11. for gw1). Set before lab.nodes reads it.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw"):
    _base = os.environ.get("KSERVE_LAB_ADDRESS_PREFIX", "127.0.10.").rstrip(".").split(".")
    _base[2] = str(int(_base[2]) + int(_worker[2:]))
    os.environ["KSERVE_LAB_ADDRESS_PREFIX"] = ".".join(_base) + "."

# The SSH lab's `lab` fixture, for every test module that asks for it; the
# upstream-source marks (skip, or fail with KSERVE_UPSTREAM_REQUIRED=1); and the
# check that the session leaves the working tree as it found it.
pytest_plugins = ["lab.fixtures", "upstream_needs", "tree_guard"]


def pytest_collection_modifyitems(items):
    """The SSH lab's tests first: they are the long ones, so with several workers
    (scripts/test.sh) the short ones fill in around them instead of one long lab
    file starting last. A stable sort: each file keeps its own order."""
    items.sort(key=lambda item: item.get_closest_marker("lab") is None)
