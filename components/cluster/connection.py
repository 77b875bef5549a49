"""SSH connection settings for remote.Command, one per node.

Every connection carries the node's pinned host key when the stack has one
(without it pulumi-command does not check the key at all) and goes through the
bastion when one is configured.
"""
from __future__ import annotations

import os
from typing import Optional

import pulumi
from pulumi_command import remote

from components.stack_config import Node, SshSettings

# A node that is still booting refuses SSH for a while: keep dialling for ~5 minutes.
DIAL_ERROR_LIMIT = 30
PER_DIAL_TIMEOUT = 10


def private_key_output(ssh: SshSettings, secret_key: Optional[pulumi.Output]) -> Optional[pulumi.Output]:
    """The private key as a secret Output (from the stack secret or the key file), or None for the agent."""
    if secret_key is not None:
        return pulumi.Output.secret(secret_key)
    if ssh.private_key_path:
        with open(os.path.expanduser(ssh.private_key_path), encoding="utf-8") as handle:
            return pulumi.Output.secret(handle.read())
    return None


# With ssh.useAgent the key comes from the agent: pulumi-command reads SSH_AUTH_SOCK
# itself. The socket path is not put into the inputs, where it would change with
# every login and show as a diff.
def node_connection(node: Node, ssh: SshSettings,
                    private_key: Optional[pulumi.Output]) -> remote.ConnectionArgs:
    proxy = None
    if ssh.bastion is not None:
        proxy = remote.ProxyConnectionArgs(
            host=ssh.bastion.address,
            port=ssh.bastion.port,
            user=ssh.bastion.user,
            private_key=private_key,
            host_key=ssh.bastion.host_key,
            dial_error_limit=DIAL_ERROR_LIMIT,
            per_dial_timeout=PER_DIAL_TIMEOUT,
        )
    return remote.ConnectionArgs(
        host=node.address,
        port=node.ssh_port,
        user=node.ssh_user,
        private_key=private_key,
        host_key=node.host_key,
        proxy=proxy,
        dial_error_limit=DIAL_ERROR_LIMIT,
        per_dial_timeout=PER_DIAL_TIMEOUT,
    )
