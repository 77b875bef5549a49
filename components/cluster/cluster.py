"""The whole bootstrap layer: prepared nodes, control plane, workers, Calico."""
from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.backup.timer import REMOVE_SCRIPT, EtcdBackup, backup_output
from components.cluster.cert_renewal import REMOVE_SCRIPT as RENEWAL_REMOVE_SCRIPT
from components.cluster.virtual_ip import REMOVE_SCRIPT as HA_ENDPOINT_REMOVE_SCRIPT
from components.cluster.calico import Calico
from components.cluster.commands import node_command
from components.cluster.connection import node_connection
from components.cluster.control_plane import ControlPlane
from components.cluster.joined_control_plane import JoinedControlPlane
from components.cluster.virtual_ip import VirtualIp
from components.cluster.node_preparation import PreparedNode
from components.cluster.node_reset import node_reset
from components.cluster.worker import WorkerNode
from components.gpu.config import model_gpus
from components.gpu.node import GpuNode
from components.monitoring.values import monitoring_memory_mb
from components.preflight.gate import Preflight
from components.stack_config import StackConfig
from components.upgrade.upgrade import Upgrade, version_verdict

READY_TIMEOUT_SECONDS = "900"


class Cluster(pulumi.ComponentResource):
    """A kubeadm cluster on the stack's nodes, and a Kubernetes provider for it.

    `provider` is what the serving layers build on; `ready` is the step after
    which every node is Ready; Kubernetes objects pass `deleted_with=teardown`
    so that destroying the cluster does not delete them one by one.
    """

    def __init__(self, config: StackConfig, private_key: Optional[pulumi.Output],
                 opts: Optional[pulumi.ResourceOptions] = None,
                 gates: Sequence[pulumi.Output] = ()):
        """`gates`: checks of the stack as a whole that must pass, like the
        preflight, before any node is touched."""
        super().__init__("kserve-cluster:cluster:Cluster", "cluster", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        connections = {node.name: node_connection(node, config.ssh, private_key)
                       for node in config.nodes}
        self.preflight = Preflight(list(config.nodes), connections,
                                   config.serving.ingress_node_port, opts=child,
                                   monitoring_memory_mb=monitoring_memory_mb(config),
                                   gpu=config.gpu, model_gpus=model_gpus(config.serving.models),
                                   versions=(config.control_plane.name, config.kubernetes.version,
                                             lambda text: version_verdict(config, text)),
                                   gates=gates,
                                   haproxy_port=config.kubernetes.high_availability.port
                                   if config.kubernetes.high_availability else None,
                                   train=config.kubernetes.train)
        # Every node is prepared at the same time: no edge between two nodes.
        self.prepared = {
            node.name: PreparedNode(node, connections[node.name], config.kubernetes,
                                    self.preflight.passed, opts=child,
                                    extra_packages=config.storage.settings.node_packages)
            for node in config.nodes
        }
        # GPU workers: driver, toolkit and containerd's nvidia runtime before they join.
        self.gpu_nodes = {
            node.name: GpuNode(node, connections[node.name], config.gpu,
                               self.prepared[node.name].prepare, opts=child)
            for node in config.workers if node.gpu
        }
        # The virtual IP's haproxy and keepalived on every control plane, before kubeadm.
        ha = config.kubernetes.high_availability
        control_planes = config.control_planes
        # A joined control plane that leaves is reset from this machine, with its
        # timers and keepalived/haproxy, or only warned about when it does not answer
        # (its etcd member is removed from the first control plane before).
        leaving_steps = [REMOVE_SCRIPT, RENEWAL_REMOVE_SCRIPT] + \
            ([HA_ENDPOINT_REMOVE_SCRIPT] if ha is not None else [])
        self.resets = {
            node.name: node_reset(node, config.ssh, private_key,
                                  pulumi.ResourceOptions(parent=self,
                                                         depends_on=[self.prepared[node.name].prepare]),
                                  before=leaving_steps)
            for node in control_planes[1:]}
        self.virtual_ip = VirtualIp(ha, [self.prepared[n.name] for n in control_planes],
                                    opts=child, resets=self.resets) if ha is not None else None
        endpoints = self.virtual_ip.endpoints if self.virtual_ip is not None else {}
        first = config.control_plane
        # With no workers the control planes must run workloads themselves.
        self.control_plane = ControlPlane(self.prepared[first.name],
                                          config.kubernetes, schedulable=not config.workers,
                                          opts=child,
                                          before_init=[endpoints[first.name]] if endpoints else [])
        self.teardown = self.control_plane.init
        # etcd snapshots on every control plane (components/backup, docs/operations.md).
        self.etcd_backup = EtcdBackup(first, self.control_plane.connection,
                                      config.backup, self.control_plane.init, opts=child)
        self.backup = backup_output(config.backup, list(control_planes))
        # The other control planes join one at a time, each once the one before it
        # is a registered node: etcd grows by one member at a time.
        self.joined: dict[str, JoinedControlPlane] = {}
        previous: pulumi.Resource = self.control_plane.init
        self.control_plane_change = None
        if ha is not None:
            # Runs when the list of control planes changes, before Pulumi deletes
            # the ones that left: more than one at once, or a loss of etcd quorum,
            # is refused there (scripts/node/control-plane-change.sh).
            self.control_plane_change = node_command(
                "control-plane-change", self.control_plane.connection,
                "control-plane-change.sh",
                {"CONTROL_PLANES": " ".join(n.name for n in control_planes)},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.control_plane.init],
                                            deleted_with=self.teardown))
            previous = self.control_plane_change
        for node in control_planes[1:]:
            joined = JoinedControlPlane(
                self.prepared[node.name], self.control_plane, config.kubernetes, config.backup,
                after=previous, first_backup=self.etcd_backup.timer,
                reset=self.resets[node.name],
                before_join=endpoints.get(node.name), schedulable=not config.workers,
                opts=child)
            self.joined[node.name] = joined
            previous = joined.membership
        after_control_planes = [previous] if self.joined else []
        self.workers = {node.name: WorkerNode(
            self.prepared[node.name], self.control_plane, opts=child,
            before_join=self.gpu_nodes[node.name].ready if node.name in self.gpu_nodes else None,
            after=after_control_planes, ssh=config.ssh, private_key=private_key)
            for node in config.workers}
        self.provider = k8s.Provider(
            "kubernetes",
            kubeconfig=self.control_plane.kubeconfig,
            # A lab that was torn down outside Pulumi must not block `pulumi destroy`.
            delete_unreachable=True,
            opts=pulumi.ResourceOptions(parent=self))
        self.calico = Calico(config.kubernetes, self.provider, self.teardown, opts=child,
                             train=config.serving.train,
                             connection=self.control_plane.connection)
        self.nodes_ready = node_command(
            "nodes-ready", self.control_plane.connection, "wait-nodes-ready.sh",
            {"NODE_NAMES": " ".join(node.name for node in config.nodes),
             "READY_TIMEOUT_SECONDS": READY_TIMEOUT_SECONDS},
            opts=pulumi.ResourceOptions(
                parent=self, deleted_with=self.teardown,
                depends_on=[self.calico.release] + [w.membership for w in self.workers.values()]
                + [c.membership for c in self.joined.values()]))
        # A raised kubernetes.version upgrades the nodes here, before any layer on top:
        # the layers wait for `ready`, the upgrade (whose commands wait for nodes-ready).
        self.upgrade = Upgrade(config, connections, self.control_plane.kubeconfig,
                               self.nodes_ready, self.teardown,
                               snapshot_installed=self.etcd_backup.timer, opts=child)
        self.ready = self.upgrade
        self.kubeconfig = self.control_plane.kubeconfig
        self.api_endpoint = f"https://{config.kubernetes.control_plane_endpoint}"
        self.nodes = [{"name": n.name, "address": n.address, "role": n.role} for n in config.nodes]
        self.register_outputs({
            "kubeconfig": self.kubeconfig,
            "apiEndpoint": self.api_endpoint,
            "nodes": self.nodes,
            "backup": self.backup,
        })
