"""The upgrade of a running cluster, as remote commands in kubeadm's order.

Every command is triggered only by a change of `kubernetes.version` (its
`triggers`): an ordinary `pulumi up` never runs them again. On a fresh stack,
and on a node that already runs the target, each script finds nothing to do
(a resumed run skips finished nodes). The version check that refuses a skipped
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

READY_TIMEOUT_SECONDS = "600"


def parse_versions(text: str, roles: dict[str, str]) -> list[ObservedNode]:
    """scripts/node/upgrade-versions.sh's answer -> the observed nodes, in the
    stack's order (a stack node not in the cluster has kubelet '')."""
    api_server, kubelets = "", {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "api_server":
            api_server = value.strip()
        elif key == "node" and value.split():
            name, *rest = value.split()
            kubelets[name] = rest[0] if rest else ""
    observed = []
    first_control_plane = True
    for name, role in roles.items():
        control_plane = ""
        if role == "control-plane" and first_control_plane:
            control_plane, first_control_plane = api_server, False
        observed.append(ObservedNode(name, role, kubelets.get(name, ""), control_plane))
    return observed


def version_verdict(config: StackConfig, versions_text: str) -> str:
    """'' when the version change can go ahead (or there is none); else the refusals."""
    roles = {n.name: n.role for n in config.nodes}
    try:
        plan_upgrade(parse_versions(versions_text, roles), config.kubernetes.version,
                     config.upgrade.max_unavailable, list(roles))
    except UpgradeRefused as refused:
        return "\n".join(refused.problems)
    return ""


def upgrade_inputs(config: StackConfig) -> dict[str, str]:
    target = config.kubernetes.version
    return {"TARGET_VERSION": target,
            "K8S_PACKAGE_VERSION": versions.kubernetes_package_version(target)}


class Upgrade(pulumi.ComponentResource):
    """Gates and snapshot, repositories, the control plane, then the workers in
    batches of `upgrade.maxUnavailable` (the stack's order). Serving layers wait
    for it (it is the cluster's `ready`)."""

    def __init__(self, config: StackConfig, connections: dict[str, remote.ConnectionArgs],
                 after: pulumi.Resource, teardown: pulumi.Resource,
                 snapshot_installed: Optional[pulumi.Resource] = None,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:upgrade:Upgrade", "upgrade", None, opts)
        target = config.kubernetes.version
        base = upgrade_inputs(config)
        cp = config.control_plane
        cp_connection = connections[cp.name]
        triggers = [target]

        def command(name, connection, script, env, depends_on):
            return node_command(name, connection, script, env, triggers=triggers,
                                opts=pulumi.ResourceOptions(parent=self, deleted_with=teardown,
                                                            depends_on=depends_on))

        self.gates = command("upgrade-gates", cp_connection, "upgrade-gates.sh",
                             {"TARGET_VERSION": target},
                             [after, *([snapshot_installed] if snapshot_installed else [])])
        repo = versions.kubernetes_apt_repo(versions.train_for(target).kubernetes_minor)
        self.repositories = {
            node.name: command(f"{node.name}-upgrade-repository", connections[node.name],
                               "upgrade-repository.sh", {"TARGET_VERSION": target, "K8S_APT_REPO": repo},
                               [self.gates])
            for node in config.nodes}
        drain_env = {"TARGET_VERSION": target, "DRAIN_TIMEOUT": config.upgrade.drain_timeout,
                     "READY_TIMEOUT_SECONDS": READY_TIMEOUT_SECONDS}
        self.steps: dict[str, list[remote.Command]] = {}

        def upgrade_node(node, mode, before):
            kubeadm = command(f"{node.name}-upgrade-kubeadm", connections[node.name],
                              "upgrade-kubeadm.sh", {**base, "MODE": mode},
                              [self.repositories[node.name], *before])
            drain = command(f"{node.name}-upgrade-drain", cp_connection, "upgrade-drain.sh",
                            {**drain_env, "ACTION": "drain", "NODE_NAME": node.name}, [kubeadm])
            kubelet = command(f"{node.name}-upgrade-kubelet", connections[node.name],
                              "upgrade-kubelet.sh", base, [drain])
            uncordon = command(f"{node.name}-upgrade-uncordon", cp_connection, "upgrade-drain.sh",
                               {**drain_env, "ACTION": "uncordon", "NODE_NAME": node.name}, [kubelet])
            self.steps[node.name] = [kubeadm, drain, kubelet, uncordon]
            return uncordon

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
