#!/usr/bin/env python3
"""Check every node of a stack before anything on it changes; pin SSH host keys.

    preflight.py --stack lab                 a table of checks per node, then what to fix
    preflight.py --stack lab --json          the same for machines
    preflight.py --stack lab --trust [NODE]  record the nodes' host keys in the stack file

The checks are the ones `pulumi up` runs first (components/preflight/checks.py).
SSH goes through ssh.bastion when the stack has one and checks pinned host keys.
The key comes from --key-file, SSH_KEY_FILE, ssh.privateKeyPath or the SSH agent
(the stack's encrypted sshPrivateKey secret needs the Pulumi CLI to read).
Exit status: 0 passed (maybe with warnings), 1 a check failed, 2 bad usage or config.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components.cluster.node_scripts import render_command  # noqa: E402
from components.gpu.config import model_gpus  # noqa: E402
from components.monitoring.values import monitoring_memory_mb  # noqa: E402
from components.preflight.checks import evaluate, parse_facts  # noqa: E402
from components.preflight.gate import facts_inputs  # noqa: E402
from components.preflight.ssh import (  # noqa: E402
    Credentials, connect, credentials, describe_error, fetch_host_key, fingerprint,
    quiet_paramiko_logs, run)
from components.preflight.host_key_pins import set_host_keys  # noqa: E402
from components.stack_config import ConfigError, Node, StackConfig  # noqa: E402
from components.stack_file import parse_stack_file, print_warnings, stack_file  # noqa: E402


def gather(node: Node, config: StackConfig, creds: Credentials) -> tuple[Optional[str], Optional[str], Optional[float]]:
    """(facts text, error, clock offset) for one node."""
    ha = config.kubernetes.high_availability
    ha_port = ha.port if ha is not None else None
    command = render_command("preflight-facts.sh",
                             facts_inputs(node, config.serving.ingress_node_port, ha_port,
                                          config.kubernetes.train), sudo=False)
    try:
        with connect(node, config.ssh, creds) as (client, _):
            asked = time.time()
            status, out, err = run(client, command)
    except Exception as error:  # every failure becomes a row in the report
        return None, describe_error(error), None
    if status != 0:
        return None, f"the facts script failed (exit {status}): {err.strip()[-300:]}", None
    node_time = parse_facts(out).get("time")
    offset = float(node_time) - asked if node_time else None
    return out, None, offset


def check(config: StackConfig, creds: Credentials, as_json: bool) -> int:
    nodes = list(config.nodes)
    facts, errors, offsets = {}, {}, {}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(32, len(nodes))) as pool:
        futures = {pool.submit(gather, node, config, creds): node for node in nodes}
        for done, future in enumerate(as_completed(futures), 1):
            node = futures[future]
            text, error, offset = future.result()
            facts[node.name] = text
            if error:
                errors[node.name] = error
            if offset is not None:
                offsets[node.name] = offset
            print(f"[{done}/{len(nodes)}] {node.name} ({node.address}) "
                  f"{'answered' if text is not None else 'FAILED'} after "
                  f"{time.monotonic() - started:.1f}s", file=sys.stderr)
    report = evaluate(nodes, facts, errors, offsets, monitoring_memory_mb(config),
                      gpu=config.gpu, model_gpus=model_gpus(config.serving.models),
                      renew_before_days=config.kubernetes.certificates.renew_before_days)
    print(report.to_json() if as_json else report.render())
    return 1 if report.failed else 0


def trust(stack: str, config: StackConfig, creds: Credentials, names: list[str],
          stacks_dir: Optional[Path] = None) -> int:
    chosen = [n for n in config.nodes if not names or n.name in names]
    unknown = sorted(set(names) - {n.name for n in config.nodes})
    if unknown:
        print(f"preflight.py: no such node(s) in stack {stack}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    keys, failed = {}, False
    with ThreadPoolExecutor(max_workers=min(32, len(chosen))) as pool:
        for node, future in [(n, pool.submit(fetch_host_key, n, config.ssh, creds)) for n in chosen]:
            try:
                keys[node.name] = future.result()
            except Exception as error:
                print(f"{node.name} ({node.address}): {describe_error(error)}", file=sys.stderr)
                failed = True
    for node in chosen:
        if node.name in keys:
            old = f" (was {fingerprint(node.host_key)})" if node.host_key and \
                node.host_key.split()[:2] != keys[node.name].split()[:2] else ""
            print(f"{node.name} ({node.address}): {keys[node.name].split()[0]} "
                  f"{fingerprint(keys[node.name])}{old}")
    if keys:
        path = stack_file(stack, stacks_dir)
        set_host_keys(path, keys)
        print(f"pinned {len(keys)} host key(s) in {path}; compare the "
              "fingerprints with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the nodes.")
    return 1 if failed else 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.STACK.yaml)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--trust", nargs="*", metavar="NODE",
                        help="record the host keys of these nodes (all if none) in the stack file")
    parser.add_argument("--key-file", help="SSH private key file")
    parser.add_argument("--stacks-dir", type=Path, help="where the stack files are (default: stacks/)")
    args = parser.parse_args(argv)
    quiet_paramiko_logs()
    try:
        config = parse_stack_file(args.stack, args.stacks_dir)
        print_warnings(config, "preflight.py")
        creds = credentials(config, args.key_file)
    except (ConfigError, FileNotFoundError, ValueError) as error:
        print(f"preflight.py: {error}", file=sys.stderr)
        return 2
    if args.trust is not None:
        return trust(args.stack, config, creds, args.trust, args.stacks_dir)
    return check(config, creds, args.json)


if __name__ == "__main__":
    sys.exit(main())
