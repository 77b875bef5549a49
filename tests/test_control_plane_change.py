"""The rules for changing the control planes between two runs
(components/cluster/control_plane_change.py), for every previous/new count 1..5."""
import itertools

import pytest

from components.cluster.control_plane_change import (
    ControlPlaneChangeRefused, KEEP, change_of, previous_control_planes, refusal, verdict)

COUNTS = range(1, 6)


def names(count, start=1):
    return [f"cp{i}" for i in range(start, start + count)]


def nodes_output(control_planes, workers=("worker1",)):
    return {"nodes": [{"name": n, "address": "10.0.2.1", "role": "control-plane"}
                      for n in control_planes]
            + [{"name": w, "address": "10.0.2.9", "role": "worker"} for w in workers]}


def judged(previous, current):
    error, warnings = refusal(nodes_output(previous) if previous else {}, current)
    return (str(error) if error else ""), warnings


def expected(before, after):
    """What the rules say for removing or adding control planes at the end of the list:
    'ok', 'warn' (an even count after removing one from an odd count) or 'refused'."""
    if after < before - 1:
        return "refused"  # more than one removed in one run
    if after % 2 == 1:
        return "ok"
    if after == before - 1 and before % 2 == 1:
        return "warn"
    if after == before:
        return "warn"  # the same even list again: the shrink's step is still pending
    return "refused"


@pytest.mark.parametrize("before,after", list(itertools.product(COUNTS, COUNTS)))
def test_every_pair_of_counts(before, after):
    error, warnings = judged(names(before), names(after))
    outcome = expected(before, after)
    if outcome == "refused":
        assert error, (before, after)
        assert "Traceback" not in error and "Fix:" in error
        assert error.startswith("kserve-cluster:nodes = [") or "kserve-cluster:nodes" in error
    else:
        assert not error, (before, after, error)
        assert bool(warnings) == (outcome == "warn"), warnings
    if before - after > 1:
        assert f"removes {before - after} control planes in one run" in error
        assert "remove the next one in another run" in error
    if outcome == "warn" and after < before:
        assert f"{after} control planes, after removing cp{before}" in warnings[0]
    if outcome == "warn":
        assert f"tolerates no more failures than {after - 1}" in warnings[0]
        assert f"remove one more (to {after - 1}) or add one (to {after + 1})" in warnings[0]
    if outcome == "refused" and after % 2 == 0 and before - after <= 1:
        assert f"{after} control planes (from {before}): an even count is allowed only as " \
               "the step of removing one from an odd count" in error
        assert f"give {after - 1} or {after + 1} nodes role: control-plane" in error


@pytest.mark.parametrize("count", COUNTS)
def test_a_first_up_wants_an_odd_count(count):
    error, warnings = judged(None, names(count))
    assert bool(error) == (count % 2 == 0) and not warnings
    if error:
        assert "as the cluster's first count: an even count tolerates no more failures " \
               f"than {count - 1}" in error


def test_shrinking_three_to_one_takes_two_runs_with_a_warning_between():
    error, warnings = judged(["cp1", "cp2", "cp3"], ["cp1", "cp2"])
    assert not error and len(warnings) == 1
    error, warnings = judged(["cp1", "cp2"], ["cp1"])
    assert not error and not warnings
    # and five to three
    assert not judged(names(5), names(4))[0] and not judged(names(4), names(3))[0]


@pytest.mark.parametrize("count", [3, 5])
def test_replacing_one_in_the_same_run_keeps_the_count(count):
    previous = names(count)
    current = previous[:-1] + ["cp9"]
    change = change_of(previous, current)
    assert change.removed == [previous[-1]] and change.added == ["cp9"]
    assert judged(previous, current) == ("", [])


def test_replacing_two_at_once_is_refused():
    error, _ = judged(["cp1", "cp2", "cp3"], ["cp1", "cp8", "cp9"])
    assert "removes 2 control planes in one run (cp2, cp3)" in error


def test_an_even_count_by_replacing_is_refused():
    # 3 -> 4 with one out, two in: neither a target nor a one-step shrink
    error, _ = judged(["cp1", "cp2", "cp3"], ["cp1", "cp2", "cp8", "cp9"])
    assert "4 control planes (from 3)" in error
    # and a replacement at 2 (the step of a shrink) is no one-step shrink either
    error, _ = judged(["cp1", "cp2"], ["cp1", "cp9"])
    assert "2 control planes (from 2)" in error


def test_replacing_the_only_control_plane_would_lose_quorum():
    error, _ = judged(["cp1"], ["cp2"])
    assert "removes cp1, the only etcd member the cluster has" in error
    assert "Fix: keep cp1" in error


def test_the_first_control_plane_stays_and_stays_first():
    error, _ = judged(["cp1", "cp2", "cp3"], ["cp2", "cp3", "cp4"])
    assert "removes cp1, the first control plane, where kubeadm init ran" in error
    error, _ = judged(["cp1", "cp2", "cp3"], ["cp2", "cp1", "cp3"])
    assert "lists cp2 as the first control plane, but the cluster was initialised on cp1" in error
    assert "list cp1 first among the nodes with role: control-plane" in error


def test_every_problem_at_once():
    error, _ = judged(names(5), ["cp2", "cp5"])
    assert "removes 3 control planes in one run" in error
    assert "removes cp1, the first control plane" in error


def test_previous_control_planes_come_from_the_nodes_output_in_order():
    assert previous_control_planes(nodes_output(["cp1", "cp3", "cp2"])) == ["cp1", "cp3", "cp2"]
    assert previous_control_planes({}) is None
    assert previous_control_planes(None) is None
    assert previous_control_planes({"nodes": None}) is None
    assert previous_control_planes({"nodes": [{"name": "w", "role": "worker"}]}) is None


def test_the_verdict_raises_without_a_traceback_and_warns_otherwise():
    with pytest.raises(ControlPlaneChangeRefused) as caught:
        verdict(nodes_output(names(3)), ["cp1"])
    assert "removes 2 control planes in one run (cp2, cp3)" in str(caught.value)
    said = []
    assert verdict(nodes_output(names(3)), names(2), warn=said.append) == KEEP
    assert len(said) == 1 and "after removing cp3" in said[0]
