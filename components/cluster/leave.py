"""A node's reset when it leaves the stack, tolerant of a node that is gone.

Workers and joined control planes alike (a control plane's etcd member is removed
from cp1 first, scripts/node/node-membership.sh; its timers and keepalived/haproxy
go in the same SSH session as its reset: `before`).

A remote.Command's delete fails when its node does not answer: pulumi-command
dials `dial_error_limit` times (components/cluster/connection.py: about five
minutes, for nodes that are still booting) and then the whole `pulumi up` fails,
and the next one, and every later one, while the step stays in the state. So a
worker's reset runs from the operator's machine instead (a local.Command whose
delete is scripts/reset_node.py): it dials the worker a few times within a
bounded time and runs scripts/node/reset.sh there; when the worker does not
answer (or a different machine answers at its address) it says so in a WARNING
and succeeds, since the worker's Node object is already drained and deleted by
the membership step on the control plane. A reset that runs and fails still
fails the step.

The node's connection settings and the login key travel on the command's stdin
(a Pulumi secret, as in every remote.Command's connection), never on its
command line or in its environment.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Callable, Optional, Sequence

from components.cluster.node_scripts import render_command
from components.stack_config import Bastion, Node, SshSettings

# Dial attempts and the pause between them: three tries in about 40 s (each
# connect attempt gives up after components/preflight/ssh.py's CONNECT_TIMEOUT).
ATTEMPTS = 3
PAUSE_SECONDS = 5.0
RESET_TIMEOUT_SECONDS = 600.0


def leave_document(node: Node, ssh: SshSettings, private_key: Optional[str],
                   before: Sequence[str] = ()) -> str:
    """What scripts/reset_node.py reads on stdin (JSON). `before`: node scripts (no
    inputs) that run there before reset.sh, e.g. a control plane's timer removals."""
    doc = {"node": asdict(node),
           "bastion": asdict(ssh.bastion) if ssh.bastion is not None else None,
           "useAgent": private_key is None,
           "privateKey": private_key}
    if before:  # a worker's document stays as it was
        doc["before"] = list(before)
    return json.dumps(doc, sort_keys=True)


def leave_steps(text: str) -> list[str]:
    """The scripts to run before reset.sh, from a leave document."""
    try:
        before = json.loads(text).get("before") or []
    except (ValueError, AttributeError):
        return []
    return [b for b in before if isinstance(b, str)]


def parse_leave_document(text: str) -> tuple[Node, SshSettings, Optional[str]]:
    try:
        doc = json.loads(text)
        node = Node(**doc["node"])
        bastion = Bastion(**doc["bastion"]) if doc.get("bastion") else None
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"reset_node.py: stdin is not a leave document ({error})") from None
    ssh = SshSettings(user=node.ssh_user, port=node.ssh_port, use_agent=bool(doc.get("useAgent")),
                      bastion=bastion)
    return node, ssh, doc.get("privateKey")


def reset_command(node: Node) -> str:
    return render_command("reset.sh", {"LOGIN_USER": node.ssh_user})


def reset_leaving_node(text: str, say: Callable[[str], None], connect=None, run=None,
                       attempts: int = ATTEMPTS, pause: float = PAUSE_SECONDS,
                       sleep: Callable[[float], None] = time.sleep) -> int:
    """Reset the node the document names, or warn that it cannot be reached.
    0: reset, or skipped with a warning; 1: the reset ran and failed."""
    from components.preflight import ssh as preflight_ssh
    connect = connect or preflight_ssh.connect
    run = run or preflight_ssh.run
    node, ssh, key = parse_leave_document(text)
    creds = preflight_ssh.Credentials(private_key=key, use_agent=key is None)
    preflight_ssh.quiet_paramiko_logs()
    last = ""
    for attempt in range(1, attempts + 1):
        opened = connect(node, ssh, creds)
        try:
            client, _ = opened.__enter__()
        except preflight_ssh.HostKeyMismatch as error:
            say(f"WARNING: {node.name} was not reset: {error} It is out of the cluster; "
                "reset that machine by hand if it is still the old node.")
            return 0
        except Exception as error:  # dial failure: the node is down or gone
            last = preflight_ssh.describe_error(error)
            if attempt < attempts:
                sleep(pause)
            continue
        failed = []
        try:  # connected: from here a failure is the reset's, not the network's
            for script in leave_steps(text):
                # A removal that fails is reported, and the reset still runs.
                say(f"{node.name}: {script}")
                status, _, err = run(client, render_command(script),
                                     timeout=RESET_TIMEOUT_SECONDS)
                if status != 0:
                    failed.append(f"{script} failed (exit {status}):\n{err.strip()[-1500:]}")
            say(f"{node.name}: resetting (kubeadm reset and what it leaves behind)")
            status, _, err = run(client, reset_command(node), timeout=RESET_TIMEOUT_SECONDS)
        except Exception as error:  # the connection broke, or the reset hung
            say(f"{node.name}: the reset did not finish: {preflight_ssh.describe_error(error)}")
            return 1
        finally:
            opened.__exit__(None, None, None)
        if status != 0:
            failed.append(f"reset.sh failed (exit {status}):\n{err.strip()[-1500:]}")
        if failed:
            for line in failed:
                say(f"{node.name}: {line}")
            return 1
        say(f"{node.name}: reset")
        return 0
    say(f"WARNING: {node.name} ({node.address}) did not answer {attempts} SSH attempts and was "
        f"not reset ({last}). Its Node object is drained and deleted from the cluster; if the "
        "machine comes back, run `sudo kubeadm reset -f` on it (or scripts/node/reset.sh) before "
        "reusing it.")
    return 0
