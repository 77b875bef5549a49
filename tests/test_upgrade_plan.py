"""The upgrade planner (components/upgrade/plan.py), as a pure function."""
import itertools

import pytest

from components import versions
from components.upgrade import plan as up
from components.upgrade.plan import ObservedNode, UpgradeRefused, plan_upgrade, version_problems

OLD = versions.TRAINS["1.31"].kubernetes_version
NEW = versions.TRAINS["1.32"].kubernetes_version
NEWER = versions.TRAINS["1.33"].kubernetes_version
PATCH_BEFORE = "1.31.2"
CP, W = "control-plane", "worker"
WORKERS = ["w1", "w2", "w3"]
ORDER = [up.KUBEADM_PACKAGE, up.UPGRADE_PLAN, up.UPGRADE_APPLY, up.UPGRADE_NODE, up.DRAIN,
         up.KUBELET_PACKAGE, up.RESTART, up.READY, up.UNCORDON]


def cluster(cp=OLD, cp_kubelet=None, workers=None, control_planes=1):
    nodes = [ObservedNode(f"cp{i + 1}", CP, cp_kubelet or cp, cp) for i in range(control_planes)]
    for name, version in (workers or {w: cp for w in WORKERS}).items():
        nodes.append(ObservedNode(name, W, version))
    return nodes


def actions(plan, node):
    return [s.action for s in plan.for_node(node)]


def test_minor_upgrade_in_kubeadm_order():
    plan = plan_upgrade(cluster(), NEW, 1)
    assert plan.kind == "minor" and plan.current == OLD and plan.target == NEW
    assert [s.number for s in plan.steps] == list(range(1, len(plan.steps) + 1))
    assert [s.action for s in plan.steps[:2]] == [up.GATES, up.SNAPSHOT]
    assert plan.steps[1].node == "cp1"
    repos = [s for s in plan.steps if s.action == up.REPOSITORY]
    assert [s.node for s in repos] == ["cp1", *WORKERS]
    assert all(versions.kubernetes_apt_repo("1.32") in s.text for s in repos)
    assert actions(plan, "cp1") == [up.SNAPSHOT, up.REPOSITORY, up.KUBEADM_PACKAGE, up.UPGRADE_PLAN,
                                    up.UPGRADE_APPLY, up.DRAIN, up.KUBELET_PACKAGE, up.RESTART,
                                    up.READY, up.UNCORDON]
    apply = next(s for s in plan.steps if s.action == up.UPGRADE_APPLY)
    assert apply.text == f"kubeadm upgrade apply v{NEW}"
    for worker in WORKERS:
        assert actions(plan, worker) == [up.REPOSITORY, up.KUBEADM_PACKAGE, up.UPGRADE_NODE, up.DRAIN,
                                         up.KUBELET_PACKAGE, up.RESTART, up.READY, up.UNCORDON]
    assert plan.batches == (("w1",), ("w2",), ("w3",))
    # Each node's steps are one run of numbers: the steps of its one command.
    for node in ("cp1", *WORKERS):
        numbers = [s.number for s in plan.for_node(node) if s.action != up.SNAPSHOT]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), node
        assert {up.command_of(s) for s in plan.for_node(node) if s.action != up.SNAPSHOT} \
            == {f"{node}-upgrade"}
    assert up.command_of(plan.steps[0]) == up.command_of(plan.steps[1]) == "upgrade-gates"
    # Every worker step comes after the control plane's last one, batch after batch.
    last_cp = max(s.number for s in plan.steps if s.node == "cp1")
    worker_steps = [s for s in plan.steps if s.batch]
    assert min(s.number for s in worker_steps) > last_cp
    assert [s.batch for s in worker_steps] == sorted(s.batch for s in worker_steps)


def test_patch_upgrade_is_one_step_without_a_repository_move():
    plan = plan_upgrade(cluster(PATCH_BEFORE), OLD, 1)
    assert plan.kind == "patch"
    assert up.REPOSITORY not in [s.action for s in plan.steps]
    assert f"kubeadm upgrade apply v{OLD}" in [s.text for s in plan.steps]


def test_nothing_to_do_when_every_node_is_at_the_target():
    plan = plan_upgrade(cluster(NEW), NEW, 1)
    assert plan.steps == () and plan.kind == "none"
    assert set(plan.finished) == {"cp1", *WORKERS}


def test_a_fresh_stack_has_no_cluster_and_no_steps():
    nodes = [ObservedNode("cp1", CP, ""), ObservedNode("w1", W, "")]
    assert version_problems(nodes, ["cp1", "w1"], NEW) == []
    assert plan_upgrade(nodes, NEW, 1).steps == ()


def test_a_resumed_run_skips_finished_nodes_and_keeps_the_batches():
    # The first run stopped in the middle of the workers: cp1 and w1 are done.
    half = cluster(NEW, workers={"w1": NEW, "w2": OLD, "w3": OLD})
    plan = plan_upgrade(half, NEW, 2)
    assert plan.finished == ("cp1", "w1")
    assert actions(plan, "cp1") == [up.SNAPSHOT] and actions(plan, "w1") == []
    assert plan.batches == (("w2",), ("w3",))  # w1 and w2 were one batch: w2 is left of it
    assert up.UPGRADE_APPLY not in [s.action for s in plan.steps]
    assert plan.kind == "none"  # the API server is already at the target
    assert [s.node for s in plan.steps if s.action == up.REPOSITORY] == ["w2", "w3"]


def test_control_plane_applied_but_its_kubelet_not_yet():
    plan = plan_upgrade(cluster(NEW, cp_kubelet=OLD), NEW, 1)
    assert actions(plan, "cp1")[2:] == [up.DRAIN, up.KUBELET_PACKAGE, up.RESTART, up.READY, up.UNCORDON]


def test_other_control_planes_use_upgrade_node_one_at_a_time():
    plan = plan_upgrade(cluster(control_planes=3), NEW, 3)
    assert up.UPGRADE_APPLY in actions(plan, "cp1")
    for name in ("cp2", "cp3"):
        assert up.UPGRADE_NODE in actions(plan, name) and up.UPGRADE_APPLY not in actions(plan, name)
        assert all(s.batch == 0 for s in plan.for_node(name))
    numbers = {n: [s.number for s in plan.for_node(n) if s.action != up.REPOSITORY]
               for n in ("cp1", "cp2", "cp3")}
    assert max(numbers["cp1"]) < min(numbers["cp2"]) and max(numbers["cp2"]) < min(numbers["cp3"])


@pytest.mark.parametrize("size, batches", [(1, [["w1"], ["w2"], ["w3"]]), (2, [["w1", "w2"], ["w3"]]),
                                           (3, [["w1", "w2", "w3"]])])
def test_workers_in_batches_of_max_unavailable(size, batches):
    plan = plan_upgrade(cluster(), NEW, size)
    assert [list(b) for b in plan.batches] == batches
    for number, batch in enumerate(batches, start=1):
        assert {s.node for s in plan.steps if s.batch == number} == set(batch)


def test_exhaustively_over_every_mix_of_node_versions():
    """Every combination of per-node versions a 1.31 -> 1.32 run can leave behind,
    at every batch size: the plan's invariants hold, or the mix is refused."""
    choices = [OLD, NEW]
    for cp_api, cp_kubelet, *worker_versions in itertools.product(choices, repeat=5):
        observed = [ObservedNode("cp1", CP, cp_kubelet, cp_api)] + [
            ObservedNode(w, W, v) for w, v in zip(WORKERS, worker_versions)]
        for size in (1, 2, 3):
            if up.semver(cp_kubelet) > up.semver(cp_api) or any(
                    up.semver(v) > up.semver(cp_api) for v in worker_versions):
                # A kubelet newer than its API server: a downgrade of the target is refused.
                with pytest.raises(UpgradeRefused):
                    plan_upgrade(observed, cp_api, size)
                continue
            plan = plan_upgrade(observed, NEW, size)
            check_invariants(plan, observed, size)


def check_invariants(plan, observed, size):
    at_target = {n.name for n in observed if n.kubelet == NEW and (n.role == W or n.control_plane == NEW)}
    assert set(plan.finished) == at_target
    if len(at_target) == len(observed):
        assert plan.steps == ()
        return
    assert [s.action for s in plan.steps[:2]] == [up.GATES, up.SNAPSHOT]
    for node in observed:
        steps = [s.action for s in plan.for_node(node.name) if s.action not in (up.SNAPSHOT, up.REPOSITORY)]
        if node.name in at_target:
            assert steps == []
            continue
        assert steps == sorted(steps, key=ORDER.index), (node, steps)
        if node.kubelet != NEW:
            assert steps[-5:] == [up.DRAIN, up.KUBELET_PACKAGE, up.RESTART, up.READY, up.UNCORDON]
    assert all(len(b) <= size for b in plan.batches)
    batched = [w for b in plan.batches for w in b]
    assert batched == [w for w in WORKERS if w not in at_target]
    # A step on a node comes after the repository move of that node.
    for node in observed:
        numbers = [(s.action, s.number) for s in plan.for_node(node.name)]
        repo = [n for a, n in numbers if a == up.REPOSITORY]
        if repo:
            assert all(n > repo[0] for a, n in numbers if a not in (up.REPOSITORY, up.SNAPSHOT))
    # The control plane's work, its repository move too, precedes every worker's:
    # each node moves its repository in its own command.
    cp_numbers = [s.number for s in plan.for_node("cp1") if s.action != up.SNAPSHOT]
    worker_numbers = [s.number for s in plan.steps if s.batch]
    if cp_numbers and worker_numbers:
        assert max(cp_numbers) < min(worker_numbers)


# ------------------------------------------------------------ refusals

def only(problems):
    assert len(problems) == 1, problems
    assert problems[0].startswith("kserve-cluster:kubernetes.version = ") and " Fix: " in problems[0]
    return problems[0]


def test_a_skipped_minor_is_refused_naming_the_next_train():
    problem = only(version_problems(cluster(), ["cp1", *WORKERS], NEWER))
    assert "skips a minor" in problem and f"upgrade to {NEW} first" in problem
    with pytest.raises(UpgradeRefused, match="nothing was changed on any node"):
        plan_upgrade(cluster(), NEWER, 1)


@pytest.mark.parametrize("current, target", [(NEW, OLD), (OLD, PATCH_BEFORE)])
def test_a_downgrade_is_refused(current, target):
    problem = only(version_problems(cluster(current), ["cp1", *WORKERS], target))
    assert "a downgrade" in problem and f"at {current} or above" in problem


def test_a_kubelet_newer_than_the_target_is_a_downgrade_too():
    mixed = cluster(OLD, workers={"w1": OLD, "w2": "1.31.20", "w3": OLD})
    assert "a downgrade" in only(version_problems(mixed, ["cp1", *WORKERS], "1.31.15"))


def test_a_version_with_no_train_is_refused():
    assert "no release train" in only(version_problems(cluster(), ["cp1"], "1.99.0"))


def test_a_stack_node_not_in_the_cluster_is_refused_during_an_upgrade():
    problem = only(version_problems(cluster(), ["cp1", *WORKERS, "w4"], NEW))
    assert "w4 are not in the cluster" in problem and f"kubernetes.version {OLD}" in problem
    # ... but not when the version does not change: the new worker just joins.
    assert version_problems(cluster(), ["cp1", *WORKERS, "w4"], OLD) == []


def test_the_next_minor_waits_until_the_last_upgrade_finished():
    half = cluster(NEW, workers={"w1": NEW, "w2": OLD, "w3": OLD})
    problem = only(version_problems(half, ["cp1", *WORKERS], NEWER))
    assert "w2, w3" in problem and f"set kubernetes.version to {NEW}" in problem


def test_a_leading_v_is_the_same_version():
    assert plan_upgrade(cluster(NEW), f"v{NEW}", 1).steps == ()


# ------------------------------------------------------------ what a drain displaces

def test_drain_impact_names_models_losing_a_replica_and_those_left_with_none():
    placement = {"w1": {"flowers": 1, "sentiment": 1}, "w2": {"flowers": 1}}
    replicas = {"flowers": 2, "sentiment": 1}
    assert up.drain_impact(["w1"], placement, replicas) == (["flowers", "sentiment"], ["sentiment"])
    assert up.drain_impact(["w1", "w2"], placement, replicas) == (["flowers", "sentiment"],
                                                                    ["flowers", "sentiment"])
    assert up.drain_impact(["w3"], placement, replicas) == ([], [])


def test_every_control_planes_api_server_is_read_and_a_finished_one_is_skipped():
    """scripts/node/upgrade-versions.sh lists each control plane's kube-apiserver
    (its mirror pod): a re-run after cp2 finished leaves only cp3 and the worker."""
    from components.upgrade.upgrade import parse_versions
    roles = {"cp1": CP, "cp2": CP, "cp3": CP, "w1": W}
    text = (f"api_server={NEW}\n"
            f"api_server_of=cp1 {NEW}\napi_server_of=cp2 {NEW}\napi_server_of=cp3 {OLD}\n"
            f"node=cp1 {NEW} Ready\nnode=cp2 {NEW} Ready\nnode=cp3 {OLD} Ready\nnode=w1 {OLD} Ready\n")
    observed = parse_versions(text, roles)
    assert [(n.name, n.control_plane) for n in observed] == [
        ("cp1", NEW), ("cp2", NEW), ("cp3", OLD), ("w1", "")]
    plan = plan_upgrade(observed, NEW, 1)
    assert plan.finished == ("cp1", "cp2")
    assert actions(plan, "cp3")[:3] == [up.REPOSITORY, up.KUBEADM_PACKAGE, up.UPGRADE_NODE]
    assert up.UPGRADE_APPLY not in [s.action for s in plan.steps]
    # Without the pods' lines (an older script's answer) the first control plane's
    # own manifest stands in for it, and the others are taken as not yet upgraded.
    legacy = parse_versions(f"api_server={NEW}\nnode=cp1 {NEW} Ready\n", roles)
    assert [n.control_plane for n in legacy] == [NEW, "", "", ""]
