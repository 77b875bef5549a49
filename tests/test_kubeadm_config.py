"""The kubeadm documents are rendered as data and carry the stack's values."""
import pytest
import yaml

from components.cluster.kubeadm_config import (
    KUBEADM_API, parse_join_command, render_init_config, render_join_config)
from components.stack_config import parse_stack_config

RAW = {
    "nodes": [
        {"name": "cp1", "address": "10.0.2.21", "role": "control-plane"},
        {"name": "worker1", "address": "10.0.2.22", "role": "worker"},
    ],
    "kubernetes": {"version": "1.31.7", "podCidr": "172.20.0.0/16",
                   "serviceCidr": "10.100.0.0/16", "controlPlaneEndpoint": "api.lab"},
}
JOIN_LINE = ("kubeadm join api.lab:6443 --token abcdef.0123456789abcdef "
             "--discovery-token-ca-cert-hash sha256:" + "0f" * 32 + " \n")


@pytest.fixture
def config():
    return parse_stack_config(RAW, has_secret_private_key=True)


def docs_by_kind(text):
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text)}


def test_init_config_carries_addresses_cidrs_and_version(config):
    docs = docs_by_kind(render_init_config(config.control_plane, config.kubernetes))
    assert set(docs) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"}
    init, cluster = docs["InitConfiguration"], docs["ClusterConfiguration"]
    assert init["apiVersion"] == cluster["apiVersion"] == KUBEADM_API == "kubeadm.k8s.io/v1beta4"
    assert init["localAPIEndpoint"]["advertiseAddress"] == "10.0.2.21"
    registration = init["nodeRegistration"]
    assert registration["name"] == "cp1"
    assert {"name": "node-ip", "value": "10.0.2.21"} in registration["kubeletExtraArgs"]
    assert cluster["kubernetesVersion"] == "v1.31.7"
    assert cluster["controlPlaneEndpoint"] == "api.lab:6443"
    assert cluster["networking"] == {"podSubnet": "172.20.0.0/16", "serviceSubnet": "10.100.0.0/16"}
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"


def test_init_token_is_short_lived(config):
    init = docs_by_kind(render_init_config(config.control_plane, config.kubernetes))["InitConfiguration"]
    assert [t["ttl"] for t in init["bootstrapTokens"]] == ["15m"]
    assert "token" not in init["bootstrapTokens"][0]


def test_rendering_is_deterministic(config):
    assert render_init_config(config.control_plane, config.kubernetes) == \
        render_init_config(config.control_plane, config.kubernetes)


def test_join_command_parsed_and_rendered_for_the_worker(config):
    credentials = parse_join_command(JOIN_LINE)
    assert credentials.api_server_endpoint == "api.lab:6443"
    join = yaml.safe_load(render_join_config(config.workers[0], credentials))
    assert join["apiVersion"] == KUBEADM_API and join["kind"] == "JoinConfiguration"
    token = join["discovery"]["bootstrapToken"]
    assert token == {"apiServerEndpoint": "api.lab:6443", "token": "abcdef.0123456789abcdef",
                     "caCertHashes": ["sha256:" + "0f" * 32]}
    assert join["nodeRegistration"]["name"] == "worker1"
    assert {"name": "node-ip", "value": "10.0.2.22"} in join["nodeRegistration"]["kubeletExtraArgs"]


@pytest.mark.parametrize("text", [
    "",
    "kubeadm join 10.0.2.21:6443 --token abcdef.0123456789abcdef",
    "kubeadm join 10.0.2.21:6443 --token NOT-A-TOKEN --discovery-token-ca-cert-hash sha256:" + "0f" * 32,
    JOIN_LINE + JOIN_LINE,
])
def test_bad_join_output_is_refused_without_echoing_it(text):
    with pytest.raises(ValueError) as caught:
        parse_join_command(text)
    assert "abcdef.0123456789abcdef" not in str(caught.value)
    assert "NOT-A-TOKEN" not in str(caught.value)


def test_control_plane_keeps_its_taint_unless_it_is_the_only_node(config):
    tainted = docs_by_kind(render_init_config(config.control_plane, config.kubernetes))
    assert "taints" not in tainted["InitConfiguration"]["nodeRegistration"]
    alone = docs_by_kind(render_init_config(config.control_plane, config.kubernetes, schedulable=True))
    assert alone["InitConfiguration"]["nodeRegistration"]["taints"] == []
