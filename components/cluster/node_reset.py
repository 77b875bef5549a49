"""`<node>-reset`: a node's reset when it leaves the stack, run from this machine.

Nothing on create; on delete scripts/reset_node.py dials the node a few times and
resets it, or only warns when it does not answer (components/cluster/leave.py), so a
node gone for good does not fail every later run.
"""
from __future__ import annotations

from typing import Optional, Sequence

import pulumi
from pulumi_command import local

from components.cluster.leave import leave_document
from components.stack_config import Node, SshSettings

# Run by Pulumi on the operator's machine, in the project directory.
RESET_COMMAND = "python3 scripts/reset_node.py"


def node_reset(node: Node, ssh: SshSettings, private_key: Optional[pulumi.Output],
               opts: pulumi.ResourceOptions, before: Sequence[str] = ()) -> local.Command:
    """`private_key`: None with an SSH agent. `before`: node scripts run there before
    reset.sh (leave.py)."""
    key = private_key if private_key is not None else pulumi.Output.from_input(None)
    return local.Command(
        f"{node.name}-reset",
        delete=RESET_COMMAND,
        # The node, bastion and key for the delete: secret, on stdin only.
        stdin=pulumi.Output.secret(key.apply(lambda k: leave_document(node, ssh, k, before))),
        logging=local.Logging.STDERR,
        add_previous_output_in_env=False,
        opts=opts)
