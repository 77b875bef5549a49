"""SSH lab: the nodes-ready step waits for every node at once, names the ones not
Ready on timeout, and the kubectl stand-in's readiness delay behaves as the real
tool does per call (a node already Ready answers at once)."""
from components.cluster.node_scripts import render_command
from lab.fixtures import lab_marks, runner_for, up

pytestmark = lab_marks
NAMES = ["cp1", "worker1", "worker2"]
ADMIN = "kubectl --kubeconfig /etc/kubernetes/admin.conf"


def test_one_wait_covers_every_node(lab):
    cp, *_ = lab.start(NAMES)
    cp.fault("kubectl-wait", delay=0.5)  # kubelets report Ready 0.5 s after Calico runs
    runner = runner_for(lab)
    up(lab, runner)
    waits = cp.calls_matching("kubectl", "wait")
    assert len(waits) == 1, [w.line for w in waits]
    assert [a for a in waits[0].args if a.startswith("node/")] == [f"node/{n}" for n in NAMES]
    step = next(r for r in runner.transcript if r.resource == "nodes-ready")
    assert "3 node(s) Ready: cp1 worker1 worker2" in step.stdout

    # The stand-in, like kubectl: nodes already Ready meet the condition without waiting
    # (--timeout=0s checks once), however long the planted delay.
    again = cp.run(f"{ADMIN} wait --for=condition=Ready node/cp1 node/worker1 node/worker2 --timeout=0s",
                   check=False)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"node/{n} condition met" for n in NAMES]


def test_a_node_not_ready_is_named_on_timeout(lab):
    cp, worker1 = lab.start(["cp1", "worker1"])
    runner = runner_for(lab)
    up(lab, runner, names=["cp1", "worker1"])
    script = render_command("wait-nodes-ready.sh", {"NODE_NAMES": "cp1 worker1 ghost",
                                                    "READY_TIMEOUT_SECONDS": "2"})
    result = cp.run(script, check=False, timeout=60)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "node(s) ghost not Ready after 2s" in last, result.stderr
    assert "worker1" not in last and "cp1" not in last.split("not Ready")[0]

