"""The upgrade of a running cluster, as remote commands in kubeadm's order.

Every command is triggered only by a change of `kubernetes.version` (its
`triggers`): an ordinary `pulumi up` never runs them again. There is one
command per node, so a fresh build pays one quick command per node: on a fresh
stack, and on a node that already runs the target, it finds nothing to do (a
resumed run skips finished nodes). The version check that refuses a skipped
minor or a downgrade runs before any node changes, in the preflight gate
(`version_verdict`, over `scripts/node/upgrade-versions.sh`).
"""
from __future__ import annotations

from typing import Optional

import pulumi
from pulumi_command import remote

from components import versions
from components.cluster.commands import node_command
from components.stack_config import StackConfig
from components.upgrade.plan import ObservedNode, UpgradeRefused, batches_of, plan_upgrade
from components.upgrade.report import report_data, report_lines

READY_TIMEOUT_SECONDS = "600"


def parse_versions(text: str, roles: dict[str, str]) -> list[ObservedNode]:
    """scripts/node/upgrade-versions.sh's answer -> the observed nodes, in the
    stack's order (a stack node not in the cluster has kubelet ''). Each control
    plane's API server version is its mirror pod's (`api_server_of`); the first
    control plane's own manifest (`api_server`) stands in where no pod is listed."""
    api_server, api_servers, kubelets = "", {}, {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "api_server":
            api_server = value.strip()
        elif key in ("api_server_of", "node") and value.split():
            name, *rest = value.split()
            (api_servers if key == "api_server_of" else kubelets)[name] = rest[0] if rest else ""
    observed = []
    first_control_plane = True
    for name, role in roles.items():
        control_plane = ""
        if role == "control-plane":
            control_plane = api_servers.get(name, api_server if first_control_plane else "")
            first_control_plane = False
        observed.append(ObservedNode(name, role, kubelets.get(name, ""), control_plane))
    return observed


def version_verdict(config: StackConfig, versions_text: str) -> str:
    """'' when the version change can go ahead (or there is none); else the refusals.
    An upgrade to run is logged first, as numbered steps per node with what each
    drain displaces (the versions are the cluster's own, read before any change)."""
    roles = {n.name: n.role for n in config.nodes}
    try:
        plan = plan_upgrade(parse_versions(versions_text, roles), config.kubernetes.version,
                            config.upgrade.max_unavailable, list(roles))
    except UpgradeRefused as refused:
        return "\n".join(refused.problems)
    if plan.steps:
        pulumi.log.info("\n".join(report_lines(report_data(plan, config))))
    return ""


def node_inputs(config: StackConfig, node_name: str, mode: str) -> dict[str, str]:
    """scripts/node/upgrade-node.sh's environment for one node (`mode`: apply on
    the first control plane, node elsewhere)."""
    target = config.kubernetes.version
    return {"MODE": mode, "NODE_NAME": node_name, "TARGET_VERSION": target,
            "K8S_PACKAGE_VERSION": versions.kubernetes_package_version(target),
            "K8S_APT_REPO": versions.kubernetes_apt_repo(versions.train_for(target).kubernetes_minor),
            "DRAIN_TIMEOUT": config.upgrade.drain_timeout,
            "READY_TIMEOUT_SECONDS": READY_TIMEOUT_SECONDS}


class Upgrade(pulumi.ComponentResource):
    """The gates and snapshot on the control plane, then one command per node
    (scripts/node/upgrade-node.sh: repository, kubeadm, drain, kubelet, uncordon):
    the control planes one at a time, then the workers in batches of
    `upgrade.maxUnavailable` (the stack's order). Serving layers wait for it (it
    is the cluster's `ready`). The numbered steps inside each node's command are
    what `plan.py` shows (components/upgrade/plan.py)."""

    def __init__(self, config: StackConfig, connections: dict[str, remote.ConnectionArgs],
                 kubeconfig: pulumi.Input[str],
                 after: pulumi.Resource, teardown: pulumi.Resource,
                 snapshot_installed: Optional[pulumi.Resource] = None,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:upgrade:Upgrade", "upgrade", None, opts)
        target = config.kubernetes.version
        cp = config.control_plane
        triggers = [target]

        def command(name, connection, script, env, depends_on, stdin=None):
            return node_command(name, connection, script, env, triggers=triggers, stdin=stdin,
                                opts=pulumi.ResourceOptions(parent=self, deleted_with=teardown,
                                                            depends_on=depends_on))

        self.gates = command("upgrade-gates", connections[cp.name], "upgrade-gates.sh",
                             {"TARGET_VERSION": target},
                             [after, *([snapshot_installed] if snapshot_installed else [])])
        self.nodes: dict[str, remote.Command] = {}

        def upgrade_node(node, mode, before):
            self.nodes[node.name] = command(
                f"{node.name}-upgrade", connections[node.name], "upgrade-node.sh",
                node_inputs(config, node.name, mode), [self.gates, *before],
                # Drain and uncordon need the admin's credentials; a secret, on stdin.
                stdin=pulumi.Output.secret(kubeconfig))
            return self.nodes[node.name]

        # The first control plane applies; the others follow one at a time.
        previous: list[pulumi.Resource] = []
        control_planes = [n for n in config.nodes if n.is_control_plane]
        for index, node in enumerate(control_planes):
            previous = [upgrade_node(node, "apply" if index == 0 else "node", previous)]
        # Workers: the same batches as the plan shows; a batch waits for the one before.
        by_name = {n.name: n for n in config.workers}
        for batch in batches_of([n.name for n in config.workers], config.upgrade.max_unavailable):
            previous = [upgrade_node(by_name[name], "node", previous) for name in batch]
        self.done = previous
        self.register_outputs({})
