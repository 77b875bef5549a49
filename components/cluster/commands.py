"""One place that builds remote.Command resources from the node scripts."""
from __future__ import annotations

from typing import Optional

import pulumi
from pulumi_command import remote

from components.cluster.node_scripts import render_command


def node_command(name: str, connection: remote.ConnectionArgs, script: str,
                 env: Optional[dict[str, str]] = None, *,
                 stdin: Optional[pulumi.Input[str]] = None,
                 delete_script: Optional[str] = None,
                 delete_env: Optional[dict[str, str]] = None,
                 secret_stdout: bool = False,
                 triggers: Optional[list] = None,
                 sudo: bool = True,
                 opts: Optional[pulumi.ResourceOptions] = None) -> remote.Command:
    """A remote.Command that runs scripts/node/<script> (and <delete_script> on delete).

    With secret_stdout the command's stdout is stored encrypted and never logged;
    stderr is still logged, since the scripts only print progress there.
    """
    options = pulumi.ResourceOptions(
        additional_secret_outputs=["stdout"] if secret_stdout else None,
    )
    return remote.Command(
        name,
        connection=connection,
        create=render_command(script, env, sudo=sudo),
        delete=render_command(delete_script, delete_env) if delete_script else None,
        stdin=stdin,
        triggers=triggers,
        logging=remote.Logging.STDERR if secret_stdout else None,
        # The scripts read nothing from the previous run's output.
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions.merge(options, opts),
    )
