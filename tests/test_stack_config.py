"""Every validation rule of the stack config, with the message it gives."""
import copy

import pytest

from components import versions
from components.cluster.control_plane_change import refusal as change_refusal
from components.stack_config import ConfigError, parse_namespaced_config, parse_stack_config

LAB = {
    "nodes": [
        {"name": "cp1", "address": "10.0.2.21", "role": "control-plane"},
        {"name": "worker1", "address": "10.0.2.22", "role": "worker"},
        {"name": "worker2", "address": "10.0.2.23", "role": "worker"},
    ],
    "ssh": {"user": "ubuntu"},
    "kubernetes": {"version": "1.31.14"},
}


def lab(**changes):
    raw = copy.deepcopy(LAB)
    raw.update(changes)
    return raw


def problems(raw, secret=True, path_exists=lambda path: True):
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, has_secret_private_key=secret, path_exists=path_exists)
    return caught.value.problems


def only_problem(raw, **kwargs):
    found = problems(raw, **kwargs)
    assert len(found) == 1, found
    return found[0]


def test_lab_config_is_valid_with_defaults_filled_in():
    config = parse_stack_config(LAB, has_secret_private_key=True)
    assert [n.name for n in config.nodes] == ["cp1", "worker1", "worker2"]
    assert config.control_plane.address == "10.0.2.21"
    assert [w.name for w in config.workers] == ["worker1", "worker2"]
    assert config.ssh.user == "ubuntu" and config.ssh.port == 22
    assert config.kubernetes.pod_cidr == "192.168.0.0/16"
    assert config.kubernetes.service_cidr == "10.96.0.0/12"
    assert config.kubernetes.control_plane_endpoint == "10.0.2.21:6443"
    assert config.kubernetes.version_tag == "v1.31.14"


def test_kubernetes_version_defaults_to_the_pinned_patch():
    config = parse_stack_config(lab(kubernetes={}), has_secret_private_key=True)
    assert config.kubernetes.version == versions.KUBERNETES_VERSION


def test_no_control_plane():
    raw = lab(nodes=[n for n in LAB["nodes"] if n["role"] == "worker"])
    message = only_problem(raw)
    assert "kserve-cluster:nodes" in message and "found 0 control-plane nodes" in message
    assert "role: control-plane" in message and "Fix:" in message


def test_two_control_planes_are_refused_with_the_reason_on_a_first_up():
    raw = lab()
    raw["nodes"][1]["role"] = "control-plane"
    raw["kubernetes"] = {"highAvailability": {"virtualIP": "10.0.2.20"}}
    config = parse_stack_config(raw, has_secret_private_key=True)  # an even count may be a one-step shrink ...
    names = [n.name for n in config.control_planes]
    error, _ = change_refusal(None, names)  # ... but not on a first `up`
    message = str(error)
    assert "kserve-cluster:nodes = ['cp1', 'worker1']" in message
    assert "even count" in message and "give 1 or 3 nodes role: control-plane" in message


def test_no_nodes():
    assert "no nodes are configured" in only_problem(lab(nodes=[]))


def test_duplicate_names_and_addresses():
    raw = lab()
    raw["nodes"][2]["name"] = "worker1"
    raw["nodes"][2]["address"] = "10.0.2.22"
    found = problems(raw)
    assert any("nodes[2] (worker1).name = 'worker1': duplicates nodes[1] (worker1).name" in p
               for p in found)
    assert any("nodes[2] (worker1).address = '10.0.2.22': duplicates nodes[1] (worker1).address"
               in p for p in found)


@pytest.mark.parametrize("address", ["10.0.2.300", "node1.lab", "", 42])
def test_invalid_node_address(address):
    raw = lab()
    raw["nodes"][1]["address"] = address
    message = only_problem(raw)
    assert message.startswith("kserve-cluster:nodes[1] (worker1).address = ")
    assert "not a valid IP address" in message and "e.g. 10.0.2.22" in message


@pytest.mark.parametrize("key", ["name", "address", "role"])
def test_a_missing_node_key_is_required_not_invalid(key):
    raw = lab()
    del raw["nodes"][1][key]
    found = problems(raw)
    message = next(p for p in found if f".{key} = " in p)
    assert f".{key} = (not set): required." in message and "Fix:" in message
    assert "not a valid" not in message and "unknown role" not in message


def test_list_items_are_named_by_their_name():
    raw = lab()
    raw["nodes"][1]["address"] = "10.0.2.300"
    del raw["nodes"][2]["name"]
    raw["nodes"][2]["address"] = "bad"
    found = problems(raw)
    assert any(p.startswith("kserve-cluster:nodes[1] (worker1).address = ") for p in found)
    # No name to show: the index alone.
    assert any(p.startswith("kserve-cluster:nodes[2].address = 'bad'") for p in found)


@pytest.mark.parametrize("name", ["Worker1", "worker_1", "-worker", "w" * 64, ""])
def test_node_name_must_be_a_dns1123_label(name):
    raw = lab()
    raw["nodes"][1]["name"] = name
    message = only_problem(raw)
    assert message.startswith("kserve-cluster:nodes[1]") and f".name = {name!r}" in message
    assert "DNS-1123 label" in message


def test_unknown_role():
    raw = lab()
    raw["nodes"][1]["role"] = "master"
    message = only_problem(raw)
    assert "nodes[1] (worker1).role = 'master': unknown role" in message
    assert "control-plane or worker" in message


@pytest.mark.parametrize("cidr,hint", [
    ("192.168.0.0/33", "address/prefix"),
    ("192.168.1.0/16", "did you mean 192.168.0.0/16?"),
    ("not-a-cidr", "address/prefix"),
])
def test_invalid_pod_cidr(cidr, hint):
    message = only_problem(lab(kubernetes={"podCidr": cidr}))
    assert "kubernetes.podCidr" in message and "not a valid CIDR" in message and hint in message


def test_invalid_service_cidr():
    message = only_problem(lab(kubernetes={"serviceCidr": "10.96.0.0/99"}))
    assert "kubernetes.serviceCidr = '10.96.0.0/99'" in message


def test_pod_cidr_overlapping_service_cidr():
    message = only_problem(lab(kubernetes={"podCidr": "10.96.0.0/16"}))
    assert "kubernetes.podCidr = '10.96.0.0/16': overlaps kubernetes.serviceCidr 10.96.0.0/12" in message


def test_pod_cidr_containing_a_node_address():
    message = only_problem(lab(kubernetes={"podCidr": "10.0.0.0/16"}))
    assert "kubernetes.podCidr = '10.0.0.0/16': contains the address of node(s) cp1, worker1, worker2" in message


def test_service_cidr_containing_a_node_address():
    message = only_problem(lab(kubernetes={"serviceCidr": "10.0.2.0/24"}))
    assert "kubernetes.serviceCidr" in message and "contains the address of node(s)" in message


@pytest.mark.parametrize("version", ["1.30.5", "1.36.0", "2.31.1", "v1.31", "latest", "1.31.x", 1.31])
def test_kubernetes_version_with_no_train_is_refused_naming_the_trains(version):
    message = only_problem(lab(kubernetes={"version": version}))
    assert "kubernetes.version" in message
    assert f"the trains are {', '.join(versions.TRAINS)}" in message
    assert f"e.g. {versions.KUBERNETES_VERSION}" in message


@pytest.mark.parametrize("version, minor", [("1.32.13", "1.32"), ("v1.33.2", "1.33"),
                                            ("1.31.14", "1.31"), ("1.35.0", "1.35")])
def test_kubernetes_version_picks_its_train(version, minor):
    config = parse_stack_config(lab(kubernetes={"version": version}), has_secret_private_key=True)
    assert config.kubernetes.train is versions.TRAINS[minor]
    assert config.kubernetes.version == version.lstrip("v")


def test_default_version_is_the_default_train():
    config = parse_stack_config(lab(), has_secret_private_key=True)
    assert config.kubernetes.train is versions.DEFAULT_TRAIN


def test_version_with_leading_v_is_accepted():
    config = parse_stack_config(lab(kubernetes={"version": "v1.31.2"}), has_secret_private_key=True)
    assert config.kubernetes.version == "1.31.2"


def test_missing_ssh_credentials():
    message = only_problem(lab(), secret=False)
    assert "no SSH credentials are configured" in message
    assert "pulumi config set sshPrivateKey --secret --" in message


def test_several_ssh_credentials():
    message = only_problem(lab(ssh={"privateKeyPath": "~/.ssh/id_ed25519"}), secret=True)
    assert "several SSH credentials are configured" in message


def test_private_key_path_must_exist():
    message = only_problem(lab(ssh={"privateKeyPath": "/nope/id"}), secret=False,
                           path_exists=lambda path: False)
    assert "ssh.privateKeyPath = '/nope/id': no such file on this machine" in message


def test_agent_is_a_credential():
    config = parse_stack_config(lab(ssh={"useAgent": True}), has_secret_private_key=False)
    assert config.ssh.use_agent


@pytest.mark.parametrize("raw,key", [
    (lab(kubernets={"version": "1.31.14"}), "kserve-cluster:kubernets"),
    (lab(ssh={"usr": "ubuntu"}), "kserve-cluster:ssh.usr"),
    (lab(kubernetes={"podCIDR": "10.244.0.0/16"}), "kserve-cluster:kubernetes.podCIDR"),
])
def test_unknown_keys_are_reported(raw, key):
    message = only_problem(raw)
    assert message.startswith(f"{key} = ") and "unknown key" in message


@pytest.mark.parametrize("raw,guess", [
    (lab(kubernets={"version": "1.31.14"}), "kubernetes"),
    (lab(ssh={"usr": "ubuntu"}), "user"),
    (lab(kubernetes={"podCIDR": "10.244.0.0/16"}), "podCidr"),
])
def test_an_unknown_key_close_to_a_known_one_gets_did_you_mean(raw, guess):
    message = only_problem(raw)
    assert f"did you mean {guess!r}?" in message and f"rename it to {guess!r}" in message


def test_an_unknown_key_far_from_any_lists_the_known_ones():
    message = only_problem(lab(ssh={"xyzzy": 1}))
    assert "did you mean" not in message and "use one of: bastion, port" in message


def test_unknown_node_key():
    raw = lab()
    raw["nodes"][0]["adress"] = "10.0.2.21"
    found = problems(raw)
    assert any(p.startswith("kserve-cluster:nodes[0] (cp1).adress = ") and "unknown key" in p
               and "did you mean 'address'?" in p for p in found)


def test_per_node_ssh_overrides_and_host_key():
    raw = lab()
    raw["nodes"][1]["ssh"] = {"user": "admin", "port": 2222}
    raw["nodes"][1]["hostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx"
    config = parse_stack_config(raw, has_secret_private_key=True)
    worker = config.nodes[1]
    assert (worker.ssh_user, worker.ssh_port) == ("admin", 2222)
    assert worker.host_key.startswith("ssh-ed25519 ")
    assert (config.nodes[0].ssh_user, config.nodes[0].ssh_port) == ("ubuntu", 22)


def test_host_key_may_carry_the_comment_of_its_pub_file():
    raw = lab()
    raw["nodes"][1]["hostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx root@worker1"
    assert parse_stack_config(raw, has_secret_private_key=True).nodes[1].host_key.endswith("root@worker1")


def test_bad_host_key_and_port():
    raw = lab()
    raw["nodes"][1]["hostKey"] = "SHA256:abcdef"
    raw["nodes"][1]["ssh"] = {"port": 70000}
    found = problems(raw)
    assert any("nodes[1] (worker1).hostKey" in p and "not an OpenSSH public host key" in p
               for p in found)
    assert any("nodes[1] (worker1).ssh.port = 70000: outside the range 1-65535" in p for p in found)


def test_a_port_that_is_not_a_number_says_so():
    message = only_problem(lab(ssh={"port": "twenty-two"}))
    assert "ssh.port = 'twenty-two': not a whole number." in message


def test_bastion():
    config = parse_stack_config(lab(ssh={"bastion": {"address": "203.0.113.10", "user": "jump"}}),
                                has_secret_private_key=True)
    assert config.ssh.bastion.address == "203.0.113.10"
    assert config.ssh.bastion.user == "jump" and config.ssh.bastion.port == 22
    message = only_problem(lab(ssh={"bastion": {"address": "not an address!"}}))
    assert "ssh.bastion.address" in message


def test_control_plane_endpoint_forms():
    for given, expected in [("10.0.2.100", "10.0.2.100:6443"), ("api.lab:8443", "api.lab:8443"),
                            ("[fd00::1]:6443", "[fd00::1]:6443"), ("fd00::1", "[fd00::1]:6443")]:
        config = parse_stack_config(lab(kubernetes={"controlPlaneEndpoint": given}),
                                    has_secret_private_key=True)
        assert config.kubernetes.control_plane_endpoint == expected
    message = only_problem(lab(kubernetes={"controlPlaneEndpoint": "api.lab:99999"}))
    assert "kubernetes.controlPlaneEndpoint" in message


def test_every_problem_is_reported_at_once():
    raw = {
        "nodes": [{"name": "CP", "address": "999.1.1.1", "role": "boss"}],
        "kubernetes": {"version": "1.29.0", "podCidr": "10.96.0.0/16"},
        "typo": 1,
    }
    found = problems(raw, secret=False)
    keys = [p.split(" = ")[0] for p in found]
    for key in ["kserve-cluster:typo", "kserve-cluster:nodes[0] (CP).name",
                "kserve-cluster:nodes[0] (CP).address", "kserve-cluster:nodes[0] (CP).role",
                "kserve-cluster:nodes", "kserve-cluster:kubernetes.version",
                "kserve-cluster:kubernetes.podCidr", "kserve-cluster:sshPrivateKey"]:
        assert key in keys, (key, found)
    assert all("Fix:" in p for p in found)
    text = str(ConfigError(found))
    assert text.startswith(f"{len(found)} problems in the stack config (nothing was changed on any node):")


# --- namespaces: a key under a misspelt project prefix is never silently ignored

def namespaced(extra):
    full = {f"kserve-cluster:{key}": value for key, value in LAB.items()}
    full.update(extra)
    return full


def namespace_problems(extra):
    with pytest.raises(ConfigError) as caught:
        parse_namespaced_config(namespaced(extra), has_secret_private_key=True)
    return caught.value.problems


def test_a_misspelt_project_prefix_is_reported_with_the_close_match():
    [message] = namespace_problems({"kserve-clustr:serving": {"ingressNodePort": 31000}})
    assert message.startswith("kserve-clustr:serving = ")
    assert "unknown config namespace 'kserve-clustr'; did you mean 'kserve-cluster'?" in message
    assert "write it as 'kserve-cluster:serving'" in message


def test_a_key_without_namespace_is_reported():
    [message] = namespace_problems({"serving": {}})
    assert "without a namespace" in message and "'kserve-cluster:serving'" in message


def test_provider_namespaces_are_accepted():
    config = parse_namespaced_config(namespaced({"kubernetes:context": "lab",
                                                 "pulumi:tags": {"team": "ml"}}),
                                     has_secret_private_key=True)
    assert [n.name for n in config.nodes] == ["cp1", "worker1", "worker2"]


def test_a_far_off_namespace_is_reported_without_a_guess():
    [message] = namespace_problems({"aws:region": "eu-west-1"})
    assert "unknown config namespace 'aws'" in message and "did you mean" not in message


def test_encrypted_values_of_a_stack_file_are_recognised():
    from components.config_secrets import encrypted_in_file, holds_encrypted
    assert encrypted_in_file({"secure": "v1:abc"})
    assert not encrypted_in_file({"secure": "v1:abc", "other": 1})
    assert holds_encrypted([{"name": "minio", "secretAccessKey": {"secure": "v1:abc"}}])
    assert not holds_encrypted([{"name": "minio", "secretAccessKey": "plain"}])
