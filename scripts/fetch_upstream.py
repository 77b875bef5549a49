#!/usr/bin/env python3
"""Fetch the upstream files the tests compare the program against.

Usage: scripts/fetch_upstream.py [--list] [--dest DIR] [--train MINOR ...]

On a machine with internet, fills the project's upstream directory (.upstream/,
git-ignored; or $KSERVE_CLUSTER_UPSTREAM) with the source of every Helm chart the
program declares on every release train (or only the trains named with --train),
at its pinned version (`helm pull --untar`), KServe's CRDs
at the pinned tag and the local-path provisioner's release manifest. The list comes from the program itself, evaluated offline, so
a chart a new layer adds is fetched too. Needs helm 3 (on PATH, or
../shared/tools/helm). Nothing fetched is ever committed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components import upstream, versions  # noqa: E402
from components.offline.releases import (  # noqa: E402
    declared_charts, declared_releases, variants_of_trains)

NAME = "fetch_upstream.py"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true",
                        help="print what would be fetched and where, and fetch nothing")
    parser.add_argument("--dest", type=Path,
                        help=f"the directory to fill (default: ${upstream.ENV}, else .upstream/)")
    parser.add_argument("--train", action="append", metavar="MINOR", choices=list(versions.TRAINS),
                        help="only this release train's charts (repeatable; default: every "
                             f"train: {', '.join(versions.TRAINS)})")
    args = parser.parse_args(argv)
    dest = args.dest or upstream.fetch_destination()

    try:
        charts = declared_charts(declared_releases(variants_of_trains(args.train or versions.TRAINS)))
    except Exception as error:  # the program failed under the mock runtime
        print(f"{NAME}: could not list the program's Helm releases: {error}", file=sys.stderr)
        return 2
    files = upstream.pinned_files()

    if args.list:
        for ref in charts:
            print(f"chart {ref.label} -> {dest / upstream.chart_subdir(ref)}")
        for url, place in files:
            print(f"file {url} -> {dest / place}")
        return 0

    existed = dest.exists()
    failures = []
    helm = upstream.helm()
    if not helm:
        failures += [f"chart {ref.label}: {helm.reason}" for ref in charts]
    else:
        for ref in charts:
            target = dest / upstream.chart_subdir(ref)
            try:
                upstream.pull_chart(helm.path, ref, target)
            except upstream.FetchError as error:
                failures.append(f"chart {ref.label}: {error}")
                continue
            print(f"{NAME}: chart {ref.label} -> {target}")
    for url, place in files:
        target = dest / place
        try:
            upstream.download(url, target)
        except upstream.FetchError as error:
            failures.append(f"{url}: {error}")
            continue
        print(f"{NAME}: {url} -> {target}")

    upstream.remove_empty_dirs(dest)
    if not existed and dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()
    if failures:
        for failure in failures:
            print(f"{NAME}: could not fetch {failure}", file=sys.stderr)
        print(f"{NAME}: {len(failures)} of {len(charts) + len(files)} downloads failed (anything "
              "fetched before is left as it was). Check the internet connection and any proxy, "
              "then run it again.", file=sys.stderr)
        return 1
    print(f"{NAME}: {len(charts)} charts and {len(files)} files in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
