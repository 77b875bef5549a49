#!/usr/bin/env python3
"""Reset a worker that leaves the stack, or warn when it does not answer.

    reset_node.py < LEAVE_DOCUMENT

What `pulumi up` runs (on this machine, as the delete of `<worker>-reset`) when a
worker is removed from the stack, after the control plane has drained it and
deleted its Node object: it dials the worker a few times (about 40 s in all)
and runs scripts/node/reset.sh there. A worker that does not answer is left as
it is, with a WARNING, and the run goes on (components/cluster/leave.py).
stdin: the JSON document components/cluster/leave.py writes (the node, the
bastion and the login key; Pulumi keeps it secret).
Exit status: 0 reset or skipped with a warning, 1 the reset failed, 2 bad input.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components.cluster.leave import reset_leaving_node  # noqa: E402


def main(stdin=None) -> int:
    text = (stdin or sys.stdin).read()
    try:
        return reset_leaving_node(text, say=lambda line: print(line, file=sys.stderr))
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
