"""SSH lab: uploads into model stores run for real.

Each file goes to the control plane over the node's real sshd (SFTP, as
CopyToRemote does), and `upload-to-claim.sh` runs there over SSH: it checks the
staged files and writes them into the claim through a pod that mounts it (the
kubectl stand-in runs that pod's commands on the node, with the claim's
directory mounted where the pod mounts it).
"""
import shutil

import pytest

from lab.fixtures import lab_marks, runner_for

pytestmark = lab_marks

EXAMPLE = "examples/torchserve/model"
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf"
STAGING = "/home/{user}/.kserve-cluster"


@pytest.fixture
def model_files(tmp_path):
    """A TorchServe layout and an sklearn file, on "the operator's machine"."""
    from components.storage.files import ROOT
    torchserve = tmp_path / "torchserve"
    shutil.copytree(ROOT / EXAMPLE, torchserve)
    sklearn = tmp_path / "model.joblib"
    sklearn.write_bytes(b"\x80\x04joblib-stand-in" * 1000)
    return torchserve, sklearn


def stack(lab, torchserve, sklearn, with_sklearn=True):
    uploads = [{"from": str(torchserve), "to": "torchserve"}]
    if with_sklearn:
        uploads.append({"from": str(sklearn), "to": "iris/model.joblib"})
    config = lab.stack_config()
    config.update({
        "storage": {"provisioner": "local-path"},
        "modelStores": [{"name": "models", "namespace": "kserve-test", "size": "1Gi",
                         "upload": uploads}],
        "models": [{"name": "torchserve", "namespace": "kserve-test", "format": "pytorch",
                    "storageUri": "pvc://models/torchserve"}],
    })
    return config


def model_env(evaluation):
    return evaluation.named("isvc-kserve-test-torchserve-rollout").inputs["spec"]["predictor"]["model"]["env"]


def copies(runner):
    return {r.resource: r.bytes_sent for r in runner.last_run if r.phase == "copy"}


def ran(runner, prefix):
    return [(r.resource, r.phase) for r in runner.last_run if r.resource.startswith(prefix)]


def seen_by_a_pod(node, paths):
    """What a second pod that mounts the claim read-only (as the model's does) reads."""
    node.run(f"{KUBECTL} apply -f -", input="""\
apiVersion: v1
kind: Pod
metadata: {name: reader, namespace: kserve-test}
spec:
  containers:
    - name: reader
      image: busybox
      volumeMounts: [{name: models, mountPath: /mnt/models, readOnly: true}]
  volumes: [{name: models, persistentVolumeClaim: {claimName: models}}]
""")
    node.run(f"{KUBECTL} -n kserve-test wait --for=condition=Ready pod/reader --timeout=30s")
    found = {}
    for path in paths:
        result = node.run(f"{KUBECTL} -n kserve-test exec reader -- cat /mnt/models/{path}",
                          check=False)
        found[path] = result.stdout if result.returncode == 0 else None
    refused = node.run(f"{KUBECTL} -n kserve-test exec reader -- touch /mnt/models/x", check=False)
    node.run(f"{KUBECTL} -n kserve-test delete pod reader")
    return found, refused.returncode != 0


def test_a_local_model_directory_is_uploaded_and_only_changes_travel_again(lab, model_files):
    torchserve, sklearn = model_files
    (cp,) = lab.start(["cp1"])
    runner = runner_for(lab)
    config = stack(lab, torchserve, sklearn)

    first = runner.up(config, lab.key.private_openssh)

    # Every file crossed the SSH connection once, with its full size.
    sizes = {"torchserve/config/config.properties": (torchserve / "config/config.properties").stat().st_size,
             "torchserve/model-store/adder.mar": (torchserve / "model-store/adder.mar").stat().st_size,
             "iris/model.joblib": sklearn.stat().st_size}
    assert copies(runner) == {
        "stage-kserve-test-models/torchserve/config/config.properties": sizes["torchserve/config/config.properties"],
        "stage-kserve-test-models/torchserve/model-store/adder.mar": sizes["torchserve/model-store/adder.mar"],
        "stage-kserve-test-models/iris/model.joblib": sizes["iris/model.joblib"]}
    assert sorted(ran(runner, "upload-")) == [("upload-kserve-test-models/iris/model.joblib", "create"),
                                              ("upload-kserve-test-models/torchserve", "create")]
    # The claim's directory on the node holds exactly the uploaded files...
    claim = lab.claim("kserve-test", "models")
    assert claim["node"] == "cp1" and claim["path"].startswith("/opt/local-path-provisioner/pvc-")
    expected = {"torchserve/config/config.properties": (torchserve / "config/config.properties").read_bytes(),
                "torchserve/model-store/adder.mar": (torchserve / "model-store/adder.mar").read_bytes(),
                "iris/model.joblib": sklearn.read_bytes()}
    assert lab.claim_files("kserve-test", "models") == expected
    # ...and a pod that mounts the claim, as the model's does, reads them there.
    found, read_only = seen_by_a_pod(cp, ["torchserve/config/config.properties"])
    assert found == {"torchserve/config/config.properties":
                     (torchserve / "config/config.properties").read_text()}
    assert read_only
    # The helper pod is gone; the staged copy stays for the next change.
    assert lab.cluster().get("pods", {}) == {}
    assert cp.exists(STAGING.format(user=lab.user))

    # A second `up` transfers nothing and runs nothing.
    runner.up(config, lab.key.private_openssh)
    assert runner.last_run == []

    # One byte changed in one file: that file travels again, nothing else.
    properties = torchserve / "config/config.properties"
    properties.write_text(properties.read_text().replace('"maxWorkers":1', '"maxWorkers":2'))
    third = runner.up(config, lab.key.private_openssh)
    assert copies(runner) == {"stage-kserve-test-models/torchserve/config/config.properties":
                              properties.stat().st_size}
    assert ran(runner, "upload-") == [("upload-kserve-test-models/torchserve", "update")]
    assert lab.claim_files("kserve-test", "models") == {
        **expected, "torchserve/config/config.properties": properties.read_bytes()}
    # The model's pods are restarted on the new files (its spec carries their hash).
    assert model_env(first) != model_env(third)


def test_removing_an_upload_or_a_store_removes_its_files_and_destroy_cleans_the_nodes(lab, model_files):
    torchserve, sklearn = model_files
    (cp,) = lab.start(["cp1"])
    runner = runner_for(lab)
    runner.up(stack(lab, torchserve, sklearn), lab.key.private_openssh)
    staged = STAGING.format(user=lab.user)
    assert len(cp.run(f"find {staged} -type f").stdout.split()) == 3

    # The sklearn entry goes from the stack: its delete step clears its target.
    runner.up(stack(lab, torchserve, sklearn, with_sklearn=False), lab.key.private_openssh)
    assert ran(runner, "upload-") == [("upload-kserve-test-models/iris/model.joblib", "delete")]
    assert copies(runner) == {}
    assert sorted(lab.claim_files("kserve-test", "models")) == [
        "torchserve/config/config.properties", "torchserve/model-store/adder.mar"]
    assert len(cp.run(f"find {staged} -type f").stdout.split()) == 2

    # `pulumi destroy`: the upload steps go with the cluster (no pod is started), and
    # the node's reset removes the local volumes and the staged files.
    volume = lab.claim("kserve-test", "models")["path"]
    assert cp.exists(volume)
    runner.destroy()
    assert not [r for r in runner.last_run if r.resource.startswith("upload-")]
    assert not cp.exists("/opt/local-path-provisioner")
    assert not cp.exists(staged)


def test_a_store_removed_from_the_stack_takes_its_claim_and_files(lab, model_files):
    torchserve, sklearn = model_files
    (cp,) = lab.start(["cp1"])
    runner = runner_for(lab)
    config = stack(lab, torchserve, sklearn)
    config["modelStores"].append({"name": "scratch", "namespace": "kserve-test", "size": "1Gi",
                                  "upload": [{"from": str(sklearn), "to": "copy.joblib"}]})
    runner.up(config, lab.key.private_openssh)
    scratch = lab.claim("kserve-test", "scratch")["path"]
    assert lab.claim_files("kserve-test", "scratch") == {"copy.joblib": sklearn.read_bytes()}

    config["modelStores"].pop()
    runner.up(config, lab.key.private_openssh)
    # Its upload's delete ran first (the claim was still there), then the claim went.
    assert ran(runner, "upload-") == [("upload-kserve-test-scratch/copy.joblib", "delete")]
    assert lab.claim("kserve-test", "scratch") == {}
    assert not cp.exists(scratch)
    assert set(lab.claim_files("kserve-test", "models")) >= {"torchserve/model-store/adder.mar"}


def test_nfs_storage_installs_nfs_common_on_every_node_once(lab):
    nodes = lab.start(["cp1", "worker1"])
    runner = runner_for(lab)
    config = lab.stack_config()
    config["storage"] = {"nfs": {"server": "10.0.2.5", "path": "/exports/models"}}
    runner.up(config, lab.key.private_openssh)
    for node in nodes:
        assert "nfs-common" in node.packages(), node.name
        assert len(node.calls_matching("apt-get", "install", "nfs-common")) == 1
    # prepare.sh run again changes nothing on the nodes.
    before = {node.name: node.snapshot() for node in nodes}
    runner.rerun_creates()
    for node in nodes:
        assert node.snapshot() == before[node.name], node.name
