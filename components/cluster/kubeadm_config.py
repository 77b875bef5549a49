"""kubeadm configuration documents (kubeadm.k8s.io/v1beta4), built as data.

Pure: no Pulumi. The documents are dicts dumped to YAML, never strings pasted
together, so every value is quoted correctly and the tests can parse them back.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Optional

import yaml

from components.gpu.config import NODE_LABEL, NODE_TAINT
from components.stack_config import KubernetesSettings, Node

KUBEADM_API = "kubeadm.k8s.io/v1beta4"
KUBELET_API = "kubelet.config.k8s.io/v1beta1"
CRI_SOCKET = "unix:///run/containerd/containerd.sock"
# The token kubeadm init itself creates is never used for joins (each worker gets
# a fresh one), so it lives only long enough for init to finish.
INIT_TOKEN_TTL = "15m"


def _node_registration(node: Node) -> dict:
    return {
        "name": node.name,
        "criSocket": CRI_SOCKET,
        # v1beta4 writes extra args as a list of name/value pairs.
        "kubeletExtraArgs": [{"name": "node-ip", "value": node.address}],
    }


def render_init_config(control_plane: Node, kubernetes: KubernetesSettings,
                       schedulable: bool = False) -> str:
    """InitConfiguration + ClusterConfiguration + KubeletConfiguration as YAML.

    `schedulable` (a cluster with no workers) leaves the control plane without
    its NoSchedule taint, so that workloads can run on a single-node cluster.
    """
    ha = kubernetes.high_availability
    init = {
        "apiVersion": KUBEADM_API,
        "kind": "InitConfiguration",
        "bootstrapTokens": [{
            "ttl": INIT_TOKEN_TTL,
            "description": "kserve-cluster: created by kubeadm init, not used for joins",
        }],
        "localAPIEndpoint": {"advertiseAddress": control_plane.address, "bindPort": 6443},
        "nodeRegistration": _node_registration(control_plane),
    }
    if schedulable:
        init["nodeRegistration"]["taints"] = []  # [] means none; absent means the default taint
    cluster = {
        "apiVersion": KUBEADM_API,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": kubernetes.version_tag,
        "controlPlaneEndpoint": kubernetes.control_plane_endpoint,
        "networking": {
            "podSubnet": kubernetes.pod_cidr,
            "serviceSubnet": kubernetes.service_cidr,
        },
        # Leaf certificates only; caCertificateValidityPeriod stays kubeadm's ten
        # years (components/cluster/certificates.py says why).
        "certificateValidityPeriod": kubernetes.certificates.validity_period,
    }
    if ha is not None:
        # kubeadm names controlPlaneEndpoint's host itself; the virtual IP is named
        # too in case the endpoint is a DNS name for it.
        cluster["apiServer"] = {"certSANs": [ha.virtual_ip]}
    kubelet = {
        "apiVersion": KUBELET_API,
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        # The kubelet renews its own client certificate before it expires. kubeadm
        # forces this on anyway (componentconfigs/kubelet.go); said here so that it shows.
        "rotateCertificates": True,
    }
    return yaml.safe_dump_all([init, cluster, kubelet], sort_keys=False)


@dataclass(frozen=True)
class JoinCredentials:
    api_server_endpoint: str
    token: str
    ca_cert_hash: str
    # Set for a control plane: decrypts the certificates `kubeadm init phase
    # upload-certs` left in the kubeadm-certs Secret (which expires in 2 hours).
    certificate_key: Optional[str] = None


_TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_CERTIFICATE_KEY = re.compile(r"^[0-9a-f]{64}$")  # hex of a 32-byte AES key


def parse_join_command(text: str) -> JoinCredentials:
    """Read `kubeadm token create --print-join-command` output.

    Raises ValueError without echoing the text: it carries a secret.
    """
    lines = [line for line in text.strip().splitlines() if line.startswith("kubeadm join ")]
    if len(lines) != 1:
        raise ValueError("expected exactly one 'kubeadm join' line from kubeadm token create")
    words = shlex.split(lines[0])
    try:
        endpoint = words[2]
        token = words[words.index("--token") + 1]
        ca_hash = words[words.index("--discovery-token-ca-cert-hash") + 1]
    except (IndexError, ValueError):
        raise ValueError("the join command from kubeadm token create lacks --token or "
                         "--discovery-token-ca-cert-hash") from None
    if not _TOKEN.match(token) or not _HASH.match(ca_hash):
        raise ValueError("the token or CA hash from kubeadm token create is malformed")
    certificate_key = None
    if "--certificate-key" in words:
        index = words.index("--certificate-key") + 1
        certificate_key = words[index] if index < len(words) else ""
        if "--control-plane" not in words or not _CERTIFICATE_KEY.match(certificate_key):
            raise ValueError("the control-plane join command from kubeadm token create has a "
                             "malformed --certificate-key")
    return JoinCredentials(endpoint, token, ca_hash, certificate_key)


def render_join_config(worker: Node, credentials: JoinCredentials,
                       schedulable: bool = False) -> str:
    """JoinConfiguration for one worker, or for a control plane when the
    credentials carry a certificate key. The result carries the token (and the
    key): keep it secret. `schedulable` leaves a control plane without its
    NoSchedule taint, as render_init_config does."""
    join = {
        "apiVersion": KUBEADM_API,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": credentials.api_server_endpoint,
                "token": credentials.token,
                "caCertHashes": [credentials.ca_cert_hash],
            },
        },
        "nodeRegistration": _node_registration(worker),
    }
    if credentials.certificate_key is not None:
        # A control plane: its own API server and etcd member, with the
        # certificates the key decrypts (kubeadm v1beta4 JoinControlPlane).
        join["controlPlane"] = {
            "localAPIEndpoint": {"advertiseAddress": worker.address, "bindPort": 6443},
            "certificateKey": credentials.certificate_key,
        }
        if schedulable:  # a cluster with no workers: every control plane runs workloads
            join["nodeRegistration"]["taints"] = []
    if worker.gpu:
        # Set at join, by the kubelet itself: the node never runs a pod without them.
        # Only pods that tolerate the taint (GPU models, the device plugin) land here.
        registration = join["nodeRegistration"]
        registration["kubeletExtraArgs"].append(
            {"name": "node-labels", "value": "=".join(NODE_LABEL)})
        registration["taints"] = [dict(NODE_TAINT)]
    return yaml.safe_dump(join, sort_keys=False)
