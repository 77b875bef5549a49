"""The storage layer under Pulumi's mock runtime: order, triggers, secrets, no diff."""
import json
import shutil

import pytest

from components import versions
from components.offline.graph import Graph
from components.offline.program import evaluate
from components.stack_file import stack_file_config
from components.storage.files import ROOT

EXAMPLE = ROOT / "examples" / "torchserve" / "model"
KEYS = {"accessKeyId": "AKIAEXAMPLEKEYID0002", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"}
MINIO = {"name": "minio", "namespace": "kserve-test", "endpoint": "minio.minio.svc:9000",
         "region": "us-east-1", "useHttps": False, "verifySsl": False}


@pytest.fixture(scope="module")
def example():
    evaluation = evaluate(stack_file_config("torchserve-example"))
    return evaluation, Graph(evaluation)


@pytest.fixture
def two_uploads(tmp_path):
    """One store with a TorchServe directory and an sklearn file; a model reads each."""
    torchserve = tmp_path / "torchserve"
    shutil.copytree(EXAMPLE, torchserve)
    sklearn = tmp_path / "model.joblib"
    sklearn.write_bytes(b"sklearn" * 100)
    config = stack_file_config("lab")
    config.update({
        "modelStores": [{"name": "models", "namespace": "kserve-test", "size": "1Gi", "upload": [
            {"from": str(torchserve), "to": "torchserve"},
            {"from": str(sklearn), "to": "iris/model.joblib"}]}],
        "models": [{"name": "torchserve", "namespace": "kserve-test", "format": "pytorch",
                    "storageUri": "pvc://models/torchserve"},
                   {"name": "iris", "namespace": "kserve-test", "format": "sklearn",
                    "storageUri": "pvc://models/iris"}]})
    return config, torchserve, sklearn


def test_provisioner_after_every_node_is_ready_and_before_any_claim(example):
    evaluation, graph = example
    manifest = evaluation.named("local-path-provisioner")
    assert manifest.inputs["file"] == versions.LOCAL_PATH_PROVISIONER_MANIFEST_URL
    assert versions.LOCAL_PATH_PROVISIONER_VERSION in manifest.inputs["file"]
    # The layers wait for the cluster's `ready` (the upgrade step, after nodes-ready),
    # and nodes-ready itself for every worker's membership and for Calico.
    for node in ("nodes-ready", "worker1-membership", "worker2-membership", "tigera-operator-chart"):
        assert graph.waits_for("local-path-provisioner", node)
    default = evaluation.named("local-path-default-class")
    assert default.inputs["metadata"]["annotations"][
        "storageclass.kubernetes.io/is-default-class"] == "true"
    claims = evaluation.by_type("kubernetes:core/v1:PersistentVolumeClaim")
    assert claims
    for claim in claims:
        assert graph.waits_for(claim.name, "local-path-provisioner")
        assert graph.waits_for(claim.name, "local-path-default-class")
        assert graph.waits_for(claim.name, "namespace-kserve-test")


def test_claim_before_uploads_and_uploads_before_the_models_that_read_them(example):
    evaluation, graph = example
    claim = evaluation.named("claim-kserve-test-models")
    assert claim.inputs["spec"] == {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                                    "resources": {"requests": {"storage": "1Gi"}}}
    assert claim.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    upload = "upload-kserve-test-models/torchserve"
    assert "claim-kserve-test-models" in graph.direct(upload)
    copies = [r.name for r in evaluation.by_type("command:remote:CopyToRemote")]
    assert sorted(copies) == ["stage-kserve-test-models/torchserve/config/config.properties",
                              "stage-kserve-test-models/torchserve/model-store/adder.mar"]
    for copy in copies:
        assert copy in graph.direct(upload)
        # The files travel while the rest of the cluster is still being built.
        assert graph.waits_for(copy, "cp1-kubeadm-init")
        assert not graph.waits_for(copy, "nodes-ready")
    for model in ("isvc-kserve-test-torchserve", "isvc-kserve-test-torchserve-rollout",
                  "smoke-predict-kserve-test-torchserve"):
        assert graph.waits_for(model, upload), model


def test_copies_go_to_the_control_plane_staging_and_the_step_fills_the_claim(example):
    evaluation, _ = example
    copy = evaluation.named("stage-kserve-test-models/torchserve/model-store/adder.mar")
    assert copy.inputs["connection"]["host"] == "10.0.2.21"
    assert copy.inputs["remotePath"].startswith(".kserve-cluster/uploads/kserve-test/models/")
    assert copy.inputs["remotePath"].endswith("/model-store/adder.mar")
    assert copy.inputs["source"].path == "examples/torchserve/model/model-store/adder.mar"
    upload = evaluation.named("upload-kserve-test-models/torchserve")
    for word in ("ACTION=sync", "NAMESPACE=kserve-test", "CLAIM=models", "TARGET=torchserve",
                 "KIND=directory", f"HELPER_IMAGE={versions.UPLOAD_HELPER_IMAGE}"):
        assert word in upload.inputs["create"], word
    assert "ACTION=remove" in upload.inputs["delete"]
    lines = upload.inputs["stdin"].splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == ["config/config.properties",
                                                          "model-store/adder.mar"]
    assert upload.deleted_with == evaluation.urn_of("cp1-kubeadm-init")


def test_torchserve_is_asked_for_by_its_served_name(example):
    evaluation, _ = example
    entry = evaluation.outputs["models"]["kserve-test/torchserve"]
    assert entry["url"] == "http://10.0.2.21:31903/v1/models/adder:predict"
    assert entry["servedModels"] == ["adder"]
    assert entry["host"] == "torchserve.kserve-test.example.com"
    assert "/v1/models/adder:predict" in evaluation.outputs["curl"]
    smoke = evaluation.named("smoke-predict-kserve-test-torchserve")
    # Its input is the model's own: the smoke step asks for the model's status instead.
    assert "URL=http://10.0.2.21:31903/v1/models/adder " in smoke.inputs["create"]
    assert "METHOD=GET" in smoke.inputs["create"]
    assert not smoke.inputs.get("stdin")
    predictor = evaluation.named("isvc-kserve-test-torchserve-rollout").inputs["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == "pvc://models/torchserve"
    assert predictor["model"]["env"][0]["name"] == "KSERVE_CLUSTER_FILES_REVISION"


def test_two_evaluations_with_the_same_files_are_identical(two_uploads):
    config, _, _ = two_uploads
    first, second = evaluate(config), evaluate(config)
    assert sorted((r.name, r.plain) for r in first.registrations) == \
        sorted((r.name, r.plain) for r in second.registrations)


def test_one_byte_changed_in_one_file_changes_only_that_upload(two_uploads):
    config, torchserve, _ = two_uploads
    before = {r.name: r.plain for r in evaluate(config).registrations}
    archive = torchserve / "model-store" / "adder.mar"
    data = bytearray(archive.read_bytes())
    data[-1] ^= 1
    archive.write_bytes(bytes(data))
    after = {r.name: r.plain for r in evaluate(config).registrations}
    assert before.keys() == after.keys()
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {
        "stage-kserve-test-models/torchserve/model-store/adder.mar",  # its trigger
        "upload-kserve-test-models/torchserve",                      # its manifest
        # The model that reads it restarts on the new files; the smoke step asks again.
        "isvc-kserve-test-torchserve", "isvc-kserve-test-torchserve-rollout",
        "smoke-predict-kserve-test-torchserve"}
    copy = json.loads(after["stage-kserve-test-models/torchserve/model-store/adder.mar"])
    assert json.loads(before["stage-kserve-test-models/torchserve/model-store/adder.mar"])[
        "triggers"][0] != copy["triggers"][0]


def test_s3_keys_are_secret_everywhere():
    config = stack_file_config("lab")
    config["models"] = [{"name": "iris", "namespace": "kserve-test", "format": "sklearn",
                         "storageUri": "s3://models/iris", "storageSecret": "minio"}]
    evaluation = evaluate(config, secret_config={"storageSecrets": [{**MINIO, **KEYS}]})
    graph = Graph(evaluation)
    secret = evaluation.named("s3-secret-kserve-test-minio")
    assert "stringData" in secret.secret_paths
    assert secret.inputs["stringData"] == {"AWS_ACCESS_KEY_ID": KEYS["accessKeyId"],
                                           "AWS_SECRET_ACCESS_KEY": KEYS["secretAccessKey"]}
    assert secret.inputs["metadata"]["annotations"] == {
        "serving.kserve.io/s3-endpoint": "minio.minio.svc:9000",
        "serving.kserve.io/s3-usehttps": "0", "serving.kserve.io/s3-verifyssl": "0",
        "serving.kserve.io/s3-region": "us-east-1"}
    account = evaluation.named("s3-account-kserve-test-minio")
    assert account.inputs["secrets"] == [{"name": "minio"}]
    assert account.inputs["metadata"] == {"name": "minio", "namespace": "kserve-test"}
    for registration in evaluation.registrations:
        for value in KEYS.values():
            assert value not in registration.plain, registration.name
    assert not any(v in json.dumps(evaluation.outputs, default=str) for v in KEYS.values())
    predictor = evaluation.named("isvc-kserve-test-iris").inputs["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "minio"
    assert graph.waits_for("isvc-kserve-test-iris", "s3-secret-kserve-test-minio")
    assert graph.waits_for("isvc-kserve-test-iris", "s3-account-kserve-test-minio")
    # Secrets alone bring no provisioner.
    assert "local-path-provisioner" not in [r.name for r in evaluation.registrations]


def test_s3_keys_in_plain_config_stop_the_program_before_any_resource():
    config = stack_file_config("lab")
    config["storageSecrets"] = [{**MINIO, **KEYS}]
    with pytest.raises(Exception) as caught:
        evaluate(config)
    assert "is given in plain text" in str(caught.value)
    assert not any(v in str(caught.value) for v in KEYS.values())
    assert not [r for r in caught.value.registrations if r.custom]


def test_nfs_chart_values_and_nfs_common_on_every_node():
    config = stack_file_config("lab")
    config["storage"] = {"nfs": {"server": "10.0.2.5", "path": "/exports/models"}}
    evaluation = evaluate(config)
    graph = Graph(evaluation)
    release = evaluation.named("nfs-provisioner-chart")
    assert (release.inputs["chart"], release.inputs["version"]) == \
        (versions.NFS_PROVISIONER_CHART, versions.NFS_PROVISIONER_CHART_VERSION)
    assert release.inputs["repositoryOpts"]["repo"] == versions.NFS_PROVISIONER_CHART_REPO
    assert release.inputs["values"] == {
        "image": {"repository": versions.NFS_PROVISIONER_IMAGE_REPOSITORY,
                  "tag": versions.NFS_PROVISIONER_IMAGE_TAG},
        "nfs": {"server": "10.0.2.5", "path": "/exports/models"},
        "storageClass": {"name": "nfs-client", "defaultClass": True, "archiveOnDelete": True}}
    assert graph.waits_for("nfs-provisioner-chart", "nodes-ready")
    for node in ("cp1", "worker1", "worker2"):
        assert "EXTRA_PACKAGES=nfs-common" in evaluation.named(f"{node}-prepare").inputs["create"]


def test_a_stack_without_storage_is_unchanged():
    evaluation = evaluate(stack_file_config("lab"))
    assert not [r for r in evaluation.registrations if r.type.startswith("kserve-cluster:storage:")]
    assert "EXTRA_PACKAGES=" not in evaluation.named("cp1-prepare").inputs["create"]
    assert "env" not in evaluation.named("isvc-kserve-test-tf-flower").inputs["spec"]["predictor"]["model"]


def test_preview_of_a_fresh_stack_with_uploads(two_uploads):
    config, _, _ = two_uploads
    evaluation = evaluate(config, preview=True)
    assert evaluation.named("upload-kserve-test-models/iris/model.joblib")
    copy = evaluation.named("stage-kserve-test-models/iris/model.joblib")
    assert copy.inputs["remotePath"].endswith("/model.joblib")


def test_uploads_of_one_store_run_one_after_the_other(two_uploads):
    config, _, _ = two_uploads
    graph = Graph(evaluate(config))
    assert graph.waits_for("upload-kserve-test-models/iris/model.joblib",
                           "upload-kserve-test-models/torchserve")
