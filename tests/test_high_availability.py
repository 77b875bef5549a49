"""kubernetes.highAvailability and the control-plane count: every rule, with its message."""
import copy

import pytest

from components.stack_config import ConfigError, parse_stack_config

HA = {
    "nodes": [
        {"name": "cp1", "address": "10.0.2.21", "role": "control-plane"},
        {"name": "cp2", "address": "10.0.2.22", "role": "control-plane"},
        {"name": "cp3", "address": "10.0.2.23", "role": "control-plane"},
        {"name": "worker1", "address": "10.0.2.24", "role": "worker"},
    ],
    "ssh": {"user": "ubuntu"},
    "kubernetes": {"highAvailability": {"virtualIP": "10.0.2.20"}},
}


def stack(ha=None, control_planes=3, workers=1, **kubernetes):
    raw = copy.deepcopy(HA)
    nodes = [{"name": f"cp{i}", "address": f"10.0.2.{20 + i}", "role": "control-plane"}
             for i in range(1, control_planes + 1)]
    nodes += [{"name": f"worker{i}", "address": f"10.0.2.{40 + i}", "role": "worker"}
              for i in range(1, workers + 1)]
    raw["nodes"] = nodes
    raw["kubernetes"] = dict(kubernetes)
    if ha is not None:
        raw["kubernetes"]["highAvailability"] = ha
    return raw


def parse(raw):
    return parse_stack_config(raw, has_secret_private_key=True)


def problems(raw):
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    return caught.value.problems


def test_three_control_planes_behind_a_virtual_ip():
    config = parse(stack({"virtualIP": "10.0.2.20"}))
    ha = config.kubernetes.high_availability
    assert (ha.virtual_ip, ha.port, ha.prefix_length, ha.interface, ha.router_id) == \
        ("10.0.2.20", 8443, 24, None, 51)
    assert config.kubernetes.control_plane_endpoint == "10.0.2.20:8443"
    assert [n.name for n in config.control_planes] == ["cp1", "cp2", "cp3"]
    assert config.control_plane.name == "cp1"
    assert config.warnings == ()


def test_five_control_planes_and_every_optional_key():
    config = parse(stack({"virtualIP": "10.0.2.200", "interface": "ens3", "port": 9443,
                          "prefixLength": 24, "virtualRouterId": 7}, control_planes=5))
    ha = config.kubernetes.high_availability
    assert (ha.interface, ha.port, ha.router_id) == ("ens3", 9443, 7)
    assert config.kubernetes.control_plane_endpoint == "10.0.2.200:9443"
    assert len(config.control_planes) == 5


def test_a_name_for_the_virtual_ip_takes_haproxys_port():
    config = parse(stack({"virtualIP": "10.0.2.20"}, controlPlaneEndpoint="api.lab.example"))
    assert config.kubernetes.control_plane_endpoint == "api.lab.example:8443"
    found = problems(stack({"virtualIP": "10.0.2.20"}, controlPlaneEndpoint="api.lab.example:6443"))
    assert len(found) == 1
    assert "kubernetes.controlPlaneEndpoint = 'api.lab.example:6443'" in found[0]
    assert "write api.lab.example:8443" in found[0]


@pytest.mark.parametrize("count", [2, 4])
def test_an_even_count_is_left_to_the_change_gate(count):
    # 3 -> 2 and 5 -> 4 are the steps of a shrink; only the last run's control planes
    # tell a shrink from a mistake (tests/test_control_plane_change.py).
    config = parse(stack({"virtualIP": "10.0.2.20"}, control_planes=count))
    assert len(config.control_planes) == count and not config.warnings


def test_more_than_five_is_refused():
    found = problems(stack({"virtualIP": "10.0.2.20"}, control_planes=7))
    assert len(found) == 1 and "found 7 control-plane nodes" in found[0]


def test_several_control_planes_without_a_virtual_ip_are_refused():
    found = problems(stack(None))
    assert len(found) == 1, found
    assert found[0].startswith("kserve-cluster:kubernetes.highAvailability = (not set)")
    assert "set kubernetes.highAvailability.virtualIP" in found[0]


def test_one_control_plane_with_a_virtual_ip_is_a_warning_naming_growth():
    config = parse(stack({"virtualIP": "10.0.2.20"}, control_planes=1))
    assert config.kubernetes.control_plane_endpoint == "10.0.2.20:8443"
    assert len(config.warnings) == 1
    assert "not highly available" in config.warnings[0]
    assert "first step of growing" in config.warnings[0]
    assert "Grow to three control planes" in config.warnings[0]


def test_virtual_ip_equal_to_a_node_address():
    for address in ("10.0.2.22", "10.0.2.41"):  # a control plane's, a worker's
        found = problems(stack({"virtualIP": address}))
        assert len(found) == 1, found
        assert f"kubernetes.highAvailability.virtualIP = '{address}': is the address of node" \
            in found[0]
        assert "Fix: give a free address" in found[0]


def test_virtual_ip_outside_the_subnet_names_the_subnet_and_prefix_length():
    found = problems(stack({"virtualIP": "10.0.3.20"}))
    assert len(found) == 1, found
    assert "outside the /24 subnet of control plane(s) cp1 (10.0.2.21)" in found[0]
    assert "give a free address in 10.0.2.0/24" in found[0]
    assert "prefixLength" in found[0]
    # With the nodes' real prefix length it is inside.
    assert parse(stack({"virtualIP": "10.0.3.20", "prefixLength": 16}))


def test_every_problem_is_reported_at_once():
    found = problems(stack({"virtualIP": "10.0.9.1", "port": 6443, "interface": "eth 0",
                            "virtualRouterId": 300, "vip": 1}, control_planes=7))
    text = "\n".join(found)
    for part in ("highAvailability.port = 6443", "highAvailability.interface = 'eth 0'",
                 "highAvailability.virtualRouterId = 300", "highAvailability.vip = 1",
                 "highAvailability.virtualIP = '10.0.9.1'", "found 7 control-plane nodes"):
        assert part in text, part
    assert len(found) == 6, found


def test_bad_virtual_ip_values():
    assert "not an IP address" in problems(stack({"virtualIP": "vip.example"}))[0]
    assert "virtualIP = (not set): required" in problems(stack({}))[0]
    assert "must be an object" in problems(stack("10.0.2.20"))[0]


def test_ipv6_virtual_ip_uses_a_64_by_default():
    raw = stack({"virtualIP": "fd00::20"}, control_planes=3, workers=0)
    for i, node in enumerate(raw["nodes"], start=1):
        node["address"] = f"fd00::{i}"
    raw["kubernetes"]["podCidr"] = "fd10::/56"
    raw["kubernetes"]["serviceCidr"] = "fd20::/112"
    config = parse(raw)
    assert config.kubernetes.high_availability.prefix_length == 64
    assert config.kubernetes.control_plane_endpoint == "[fd00::20]:8443"
