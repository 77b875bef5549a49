"""Preflight warns when the nodes that run workloads lack the memory for monitoring."""
from components.monitoring.values import RESOURCES, memory_mb, requested_memory_mb
from components.preflight.checks import FAIL, PASS, SERVING_BASELINE_MB, WARN, evaluate
from test_preflight_checks import CP, W1, W2, facts, result

NEEDED = requested_memory_mb(3)


def nodes_with(worker_mb, cp_mb=3900):
    return {"cp1": facts("cp1", memory_mb=str(cp_mb)), "worker1": facts("worker1", memory_mb=str(worker_mb)),
            "worker2": facts("worker2", memory_mb=str(worker_mb))}


def test_requested_memory_adds_up_the_values():
    per_node = memory_mb(RESOURCES["node-exporter"]["requests"]["memory"])
    assert requested_memory_mb(4) - requested_memory_mb(3) == per_node
    assert requested_memory_mb(1) >= memory_mb(RESOURCES["prometheus"]["requests"]["memory"])


def test_warns_on_the_workers_when_they_lack_memory():
    report = evaluate([CP, W1, W2], nodes_with(3900), monitoring_memory_mb=NEEDED)
    assert not report.failed
    for worker in ("worker1", "worker2"):
        found = result(report, worker, "resources")
        assert found.status == WARN
        assert "7800 MB in all" in found.message and f"{NEEDED} MB more" in found.message
        assert "leave monitoring off" in found.message
    assert result(report, "cp1", "resources").status == PASS  # it runs no workloads


def test_enough_memory_or_monitoring_off_passes():
    enough = (SERVING_BASELINE_MB + NEEDED) // 2 + 1
    assert result(evaluate([CP, W1, W2], nodes_with(enough), monitoring_memory_mb=NEEDED),
                  "worker1", "resources").status == PASS
    assert result(evaluate([CP, W1, W2], nodes_with(3900)), "worker1", "resources").status == PASS


def test_single_node_cluster_counts_the_control_plane():
    report = evaluate([CP], {"cp1": facts("cp1", memory_mb="8000")}, monitoring_memory_mb=NEEDED)
    assert result(report, "cp1", "resources").status == WARN


def test_a_failure_stays_a_failure_and_an_earlier_warning_is_kept():
    given = nodes_with(3900, cp_mb=1000)
    given["worker1"] = facts("worker1", memory_mb="1500")
    report = evaluate([CP, W1, W2], given, monitoring_memory_mb=NEEDED)
    assert result(report, "cp1", "resources").status == FAIL
    found = result(report, "worker1", "resources")
    assert found.status == WARN and "little room for models" in found.message \
        and "monitoring asks" in found.message
