"""`pulumi up`'s first step: the preflight checks on every node, as a gate.

Each node runs `scripts/node/preflight-facts.sh` (read-only, without sudo) in
a remote.Command. Its answer is judged by `checks.evaluate`, the same code
`scripts/preflight.py` uses; every node's preparation takes the verdict as an
input, so one bad node stops the run before any node has changed. The facts
are gathered when a node is first added (a command runs on create), so a
cluster built by this stack is not later mistaken for leftovers.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import pulumi
from pulumi_command import remote

from components.cluster.commands import node_command
from components.gpu.config import GpuConfig
from components.preflight.checks import evaluate, node_ports, probe_urls
from components.stack_config import Node
from components.versions import DEFAULT_TRAIN, Train

PASSED = "preflight passed"


class PreflightFailed(pulumi.RunError):
    pass


def facts_inputs(node: Node, ingress_node_port: Optional[int],
                 haproxy_port: Optional[int] = None,
                 train: Train = DEFAULT_TRAIN) -> dict[str, str]:
    # GPU only on GPU nodes: every other node's facts command stays as it was.
    gpu = {"GPU": node.gpu} if node.gpu else {}
    return {"PORTS": " ".join(str(p) for p in node_ports(node, ingress_node_port, haproxy_port)),
            "PROBE_URLS": " ".join(probe_urls(train)), **gpu}


def verdict(nodes: list[Node], outputs: list[str], monitoring_memory_mb: int = 0,
            gpu: Optional[GpuConfig] = None, model_gpus: Optional[dict[str, int]] = None) -> str:
    report = evaluate(nodes, dict(zip((n.name for n in nodes), outputs)),
                      monitoring_memory_mb=monitoring_memory_mb, gpu=gpu, model_gpus=model_gpus)
    if report.failed:
        raise PreflightFailed("preflight failed; nothing was changed on any node.\n" + report.render())
    for line in report.problems():  # warnings only, here
        pulumi.log.warn(f"preflight: {line}")
    return PASSED


def version_gate(verdict_text: str, judge: Callable[[str], str]) -> str:
    """The version check of an upgrade (components/upgrade): refusals stop the run."""
    problems = judge(verdict_text)
    if problems:
        raise PreflightFailed("kubernetes.version cannot be applied; nothing was changed on any "
                              "node.\n" + problems)
    return PASSED


class Preflight(pulumi.ComponentResource):
    """`versions`: (the control plane's name, the target version, a judge of
    scripts/node/upgrade-versions.sh's answer returning the refusals or ''). The
    versions are read again whenever kubernetes.version changes, before any node does."""

    def __init__(self, nodes: list[Node], connections: dict[str, remote.ConnectionArgs],
                 ingress_node_port: Optional[int] = None,
                 opts: Optional[pulumi.ResourceOptions] = None, monitoring_memory_mb: int = 0,
                 gpu: Optional[GpuConfig] = None, model_gpus: Optional[dict[str, int]] = None,
                 versions: Optional[tuple[str, str, Callable[[str], str]]] = None,
                 gates: Sequence[pulumi.Output] = (),
                 haproxy_port: Optional[int] = None,
                 train: Train = DEFAULT_TRAIN):
        """`versions`: (control plane, target version, judge) for the upgrade gate;
        `gates`: further checks that raise a RunError when the run must stop
        (components/access/project_removal.py). The verdict waits for both, so a
        refusal comes before any node is touched."""
        super().__init__("kserve-cluster:preflight:Preflight", "preflight", None, opts)
        self.facts = {
            node.name: node_command(
                f"{node.name}-preflight", connections[node.name], "preflight-facts.sh",
                facts_inputs(node, ingress_node_port, haproxy_port, train), sudo=False,
                # Facts are gathered once, before a node is first touched. Re-running
                # them later (a rotated key, a new port) would find this stack's own
                # cluster and call it leftovers.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["create", "connection"]))
            for node in nodes
        }
        count = len(nodes)
        self.passed: pulumi.Output[str] = pulumi.Output.all(
            *[self.facts[n.name].stdout for n in nodes], *gates).apply(
            lambda out: verdict(nodes, list(out[:count]), monitoring_memory_mb, gpu, model_gpus))
        self.versions = None
        if versions is not None:
            control_plane, target, judge = versions
            self.versions = node_command(
                "upgrade-versions", connections[control_plane], "upgrade-versions.sh",
                triggers=[target], opts=pulumi.ResourceOptions(parent=self))
            checked = self.versions.stdout.apply(lambda text: version_gate(text, judge))
            self.passed = pulumi.Output.all(self.passed, checked).apply(lambda both: both[0])
        self.register_outputs({"passed": self.passed})
