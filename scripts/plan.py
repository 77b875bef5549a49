#!/usr/bin/env python3
"""Offline plan of a stack: what `pulumi up` would create, layer by layer.

Usage: scripts/plan.py STACK [--graph FILE.svg|FILE.png] [--json] [--from-version X.Y.Z]

Needs no Pulumi CLI, backend, SSH key or cluster: the program is evaluated under
Pulumi's mock runtime (components/plan/). With --graph it also draws the
deployment graph, the critical path highlighted (its durations are estimates).
With --from-version (the version the cluster runs) it shows the upgrade to the
stack's kubernetes.version as numbered steps per node, with what each drain
displaces; without it, it says it cannot know.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components.plan.build import plan_stack  # noqa: E402
from components.plan.svg import GraphOutputError, write_graph  # noqa: E402
from components.plan.text import render_text, to_json  # noqa: E402
from components.stack_config import ConfigError  # noqa: E402
from components.upgrade.report import valid_version  # noqa: E402


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name: reads stacks/Pulumi.STACK.yaml")
    parser.add_argument("--graph", metavar="FILE", type=Path,
                        help="also draw the deployment graph to FILE.svg (or FILE.png)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--stacks-dir", type=Path, help="where the stack files are (default: stacks/)")
    parser.add_argument("--from-version", metavar="X.Y.Z",
                        help="the Kubernetes version the cluster runs now (kubectl get nodes): "
                             "show the upgrade to the stack's kubernetes.version")
    args = parser.parse_args(argv)

    if args.graph and args.graph.suffix.lower() not in (".svg", ".png"):
        print(f"plan.py: --graph {args.graph}: the file name must end in .svg or .png",
              file=sys.stderr)
        return 2
    if args.from_version is not None and not valid_version(args.from_version):
        print(f"plan.py: --from-version {args.from_version!r}: not a Kubernetes version; give "
              "the full version the cluster runs, e.g. the pinned default's, as `kubectl get nodes` shows "
              "it", file=sys.stderr)
        return 2
    try:
        plan = plan_stack(args.stack, args.stacks_dir, from_version=args.from_version)
    except ConfigError as error:
        print(f"plan.py: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the program failed; its config errors arrive wrapped
        print(f"plan.py: the program failed for stack {args.stack}:\n{error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(to_json(plan), indent=2, default=str))
    else:
        print(render_text(plan), end="")
    if args.graph:
        try:
            write_graph(plan, args.graph)
        except GraphOutputError as error:
            print(f"plan.py: {error}", file=sys.stderr)
            return 2
        print(f"Deployment graph written to {args.graph}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
