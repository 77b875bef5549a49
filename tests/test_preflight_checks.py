"""The preflight rules on facts (pure): each check's failure and its message."""
import pytest

from components import versions
from components.preflight.checks import FAIL, PASS, WARN, evaluate, parse_facts
from components.stack_config import Node
from components.offline.program import HEALTHY_NODE_FACTS

CP = Node("cp1", "10.0.2.21", "control-plane")
W1 = Node("worker1", "10.0.2.22", "worker")
W2 = Node("worker2", "10.0.2.23", "worker")


def facts(name, **changes):
    parsed = parse_facts(HEALTHY_NODE_FACTS)
    parsed.update(hostname=name, product_uuid=f"uuid-{name}", macs=f"02:00:00:00:00:{len(name):02x}{name[-1]}")
    parsed.update(changes)
    return "\n".join(f"{k}={v}" for k, v in parsed.items())


def result(report, node, check):
    return next(n for n in report.nodes if n.node == node).results[check]


def healthy():
    return {"cp1": facts("cp1"), "worker1": facts("worker1"), "worker2": facts("worker2")}


def test_healthy_nodes_pass():
    report = evaluate([CP, W1, W2], healthy())
    assert not report.failed and report.problems() == []
    assert "preflight passed." in report.render()


@pytest.mark.parametrize("check,changes,status,words", [
    ("os", {"os_id": "debian", "os_version": "12", "os_name": "Debian GNU/Linux 12 (bookworm)"},
     FAIL, "runs Debian GNU/Linux 12 (bookworm); only Ubuntu 22.04 is supported"),
    ("os", {"os_version": "24.04", "os_name": "Ubuntu 24.04 LTS"}, FAIL, "Ubuntu 24.04 LTS"),
    ("sudo", {"sudo": "password-required"}, FAIL, "passwordless sudo"),
    ("swap", {"swap_mb": "2048"}, WARN, "swap is on (2048 MB)"),
    ("ports", {"ports_busy": "6443 10250"}, FAIL, "port(s) 6443, 10250 are already in use"),
    ("dpkg", {"dpkg_lock": "held"}, WARN, "dpkg lock is held"),
    ("repositories", {"unreachable_urls": "https://registry.k8s.io/v2/"}, WARN, "cannot reach"),
    ("leftovers", {"leftovers": "/etc/kubernetes/admin.conf kubelet-running"}, FAIL,
     "an earlier cluster is still on this node"),
    ("resources", {"cpus": "1"}, FAIL, "kubeadm needs at least 2 CPUs and 1700 MB"),
    ("resources", {"memory_mb": "1024"}, FAIL, "1024 MB"),
])
def test_each_check_fails_with_its_message(check, changes, status, words):
    given = healthy()
    given["cp1"] = facts("cp1", **changes)
    report = evaluate([CP, W1, W2], given)
    got = result(report, "cp1", check)
    assert got.status == status and words in got.message
    assert report.failed == (status == FAIL)
    assert any(line.startswith(f"cp1 (10.0.2.21) {check} {status.upper()}:") for line in report.problems())
    assert result(report, "worker1", check).status == PASS


def test_small_worker_is_only_a_warning():
    given = healthy()
    given["worker1"] = facts("worker1", memory_mb="1024", cpus="1")
    assert result(evaluate([CP, W1, W2], given), "worker1", "resources").status == WARN


@pytest.mark.parametrize("kind,value", [("product_uuid", "uuid-same"), ("hostname", "clone")])
def test_duplicate_identity_across_nodes(kind, value):
    given = healthy()
    given["worker1"] = facts("worker1", **{kind: value})
    given["worker2"] = facts("worker2", **{kind: value})
    report = evaluate([CP, W1, W2], given)
    for node, other in (("worker1", "worker2"), ("worker2", "worker1")):
        got = result(report, node, "identity")
        assert got.status == FAIL and f"{value} is shared with {other}" in got.message
    assert result(report, "cp1", "identity").status == PASS


def test_duplicate_mac():
    given = healthy()
    given["worker2"] = facts("worker2", macs=parse_facts(given["worker1"])["macs"])
    got = result(evaluate([CP, W1, W2], given), "worker2", "identity")
    assert got.status == FAIL and "MAC address" in got.message


def test_unreachable_node_keeps_the_others_checked():
    given = healthy()
    given["worker2"] = None
    report = evaluate([CP, W1, W2], given, {"worker2": "SSH connection refused: is sshd running"})
    assert result(report, "worker2", "ssh").status == FAIL
    assert "connection refused" in result(report, "worker2", "ssh").message
    assert result(report, "worker1", "os").status == PASS
    assert report.failed


def test_clock_skew_measured_by_the_cli():
    report = evaluate([CP, W1], {"cp1": facts("cp1"), "worker1": facts("worker1")},
                      clock_offsets={"cp1": 0.2, "worker1": -42.0})
    assert result(report, "cp1", "clock").status == PASS
    skewed = result(report, "worker1", "clock")
    assert skewed.status == FAIL and "-42.0s off" in skewed.message


def test_table_and_json_name_every_node_and_check():
    given = healthy()
    given["worker1"] = facts("worker1", swap_mb="512")
    report = evaluate([CP, W1, W2], given)
    table = report.table().splitlines()
    assert table[0].split()[:3] == ["node", "ssh", "sudo"]
    assert any(line.startswith("worker1 (10.0.2.22)") and " warn" in line for line in table)
    import json
    data = json.loads(report.to_json())
    assert data["ok"] is True
    assert data["nodes"][1]["checks"]["swap"]["status"] == "warn"


@pytest.mark.parametrize("version, status, detail", [
    ("", PASS, "none"),              # no runc yet: prepare installs the pinned one
    ("1.3.3", PASS, "1.3.3"),        # containerd.io 1.7.28-2 and 1.7.29-1
    ("1.3.6", PASS, "1.3.6"),
    ("1.2.8", PASS, "1.2.8"),
    ("1.4.0-rc.3", PASS, "1.4.0-rc.3"),
    ("1.4.1", PASS, "1.4.1"),
    ("2.0.0", PASS, "2.0.0"),
    ("1.3.0", WARN, "1.3.0"),        # containerd.io 1.7.28-1, the old pin
    ("1.3.2", WARN, "1.3.2"),
    ("1.2.7", WARN, "1.2.7"),
    ("1.2.5", WARN, "1.2.5"),        # containerd.io 1.7.27-1
    ("1.1.12", WARN, "1.1.12"),
    ("1.1.12-0ubuntu2~22.04.1", WARN, "1.1.12-0ubuntu2~22.04.1"),
    ("1.4.0-rc.2", WARN, "1.4.0-rc.2"),
    ("unreadable", WARN, "unknown"),
])
def test_runc_is_shown_and_an_old_one_is_a_warning_with_the_fix(version, status, detail):
    given = healthy()
    given["cp1"] = facts("cp1", runc=version)
    report = evaluate([CP, W1, W2], given)
    got = result(report, "cp1", "runc")
    assert (got.status, got.detail) == (status, detail)
    assert not report.failed  # a warning: `pulumi up` replaces it anyway
    row = next(line for line in report.table().splitlines() if line.startswith("cp1 "))
    assert row.rstrip().endswith(f"{status} {detail}")
    if status == WARN and detail != "unknown":
        assert f"runc {version} predates the fixes for CVE-2025-31133, CVE-2025-52565 and " \
               "CVE-2025-52881" in got.message
        assert f"containerd.io={versions.CONTAINERD_PACKAGE_VERSION}" in got.message
        assert any(line.startswith("cp1 (10.0.2.21) runc WARN:") for line in report.problems())
    import json
    assert json.loads(report.to_json())["nodes"][0]["checks"]["runc"]["detail"] == detail


def test_facts_without_runc_read_as_none_yet():
    report = evaluate([CP], {"cp1": facts("cp1")})
    assert result(report, "cp1", "runc").detail == "none"
