"""Validation of `storage`, `modelStores` and `storageSecrets`: one test per rule,
each asserting the key, the value and the fix, all reported together."""
import shutil

import pytest

from components.problems import ConfigError
from components.stack_config import parse_stack_config
from components.storage import torchserve
from components.storage.config import READ_WRITE_MANY, READ_WRITE_ONCE
from components.storage.files import ROOT

NODES = [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}]
EXAMPLE = ROOT / "examples" / "torchserve" / "model"
KEYS = {"accessKeyId": "AKIAEXAMPLEKEYID0001", "secretAccessKey": "s3cr3t/Example+Key=value"}


def parse(extra, secret_keys=()):
    return parse_stack_config({"nodes": NODES, **extra}, has_secret_private_key=True,
                              secret_keys=frozenset(secret_keys))


def problems(extra, secret_keys=()):
    with pytest.raises(ConfigError) as caught:
        parse(extra, secret_keys)
    return caught.value.problems


def one(extra, key, secret_keys=()):
    """The one problem whose key starts with `key`."""
    found = [p for p in problems(extra, secret_keys) if p.startswith(f"kserve-cluster:{key}")]
    assert len(found) == 1, problems(extra, secret_keys)
    assert "Fix:" in found[0]
    return found[0]


def store(**overrides):
    return {"name": "models", "namespace": "kserve-test", "size": "1Gi", **overrides}


def pytorch_model(uri="pvc://models/torchserve", **overrides):
    return {"name": "torchserve", "namespace": "kserve-test", "format": "pytorch",
            "storageUri": uri, **overrides}


@pytest.fixture
def layout(tmp_path):
    """A copy of the example's TorchServe layout, to break in each test."""
    target = tmp_path / "model"
    shutil.copytree(EXAMPLE, target)
    return target


def with_upload(source, to="torchserve"):
    return {"modelStores": [store(upload=[{"from": str(source), "to": to}])],
            "models": [pytorch_model()]}


# ---------------------------------------------------------------- defaults

def test_no_storage_keys_install_nothing():
    config = parse({})
    assert config.storage.settings.provisioner == "none"
    assert not config.storage.enabled and config.storage.settings.node_packages == ()


def test_a_store_brings_local_path_by_default_read_write_once():
    config = parse({"modelStores": [store()], "models": [pytorch_model("pvc://models/x")]})
    [claim] = config.storage.stores
    assert config.storage.settings.provisioner == "local-path"
    assert (claim.storage_class, claim.access_mode) == ("local-path", READ_WRITE_ONCE)


def test_nfs_is_read_write_many_and_needs_nfs_common_on_every_node():
    config = parse({"storage": {"nfs": {"server": "10.0.2.5", "path": "/exports/models"}},
                    "modelStores": [store()], "models": [pytorch_model("pvc://models/x")]})
    settings = config.storage.settings
    assert (settings.provisioner, settings.nfs_server, settings.nfs_path) == \
        ("nfs", "10.0.2.5", "/exports/models")
    assert settings.node_packages == ("nfs-common",)
    assert config.storage.stores[0].access_mode == READ_WRITE_MANY
    assert config.storage.stores[0].storage_class == "nfs-client"


def test_provisioner_none_uses_the_cluster_default_class_with_a_warning():
    config = parse({"storage": {"provisioner": "none"}, "modelStores": [store()],
                    "models": [pytorch_model("pvc://models/x")]})
    assert config.storage.stores[0].storage_class is None
    assert any("modelStores[0] (models).storageClass" in w and "default StorageClass" in w
               for w in config.warnings)


def test_the_example_layout_gives_the_served_name():
    config = parse(with_upload(EXAMPLE))
    [model] = config.serving.models
    assert model.served_names == ("adder",) and model.served_name == "adder"
    [upload] = config.storage.stores[0].uploads
    assert sorted(f.relative for f in upload.files) == ["config/config.properties",
                                                        "model-store/adder.mar"]
    assert upload.files[0].path.startswith("examples/torchserve/model/")  # project-relative


# ---------------------------------------------------------------- rule: pvc:// names a declared store

def test_pvc_naming_an_undeclared_store():
    message = one({"modelStores": [store()], "models": [pytorch_model("pvc://modles/torchserve")]},
                  "models[0] (torchserve).storageUri")
    assert "'pvc://modles/torchserve'" in message
    assert "names the store 'modles', which modelStores does not declare" in message
    assert "declared: kserve-test/models" in message


def test_pvc_naming_a_store_of_another_namespace():
    message = one({"modelStores": [store(namespace="other")], "models": [pytorch_model()]},
                  "models[0] (torchserve).storageUri")
    assert "is in namespace other, the model in kserve-test" in message


def test_pvc_without_any_store():
    message = one({"models": [pytorch_model()]}, "models[0] (torchserve).storageUri")
    assert "declared: none" in message


# ---------------------------------------------------------------- rule: upload sources

def test_an_upload_source_that_does_not_exist(tmp_path):
    message = one(with_upload(tmp_path / "nope"), "modelStores[0] (models).upload[0].from")
    assert "no such file or directory" in message and str(tmp_path / "nope") in message


def test_an_empty_directory(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    message = one(with_upload(tmp_path / "empty"), "modelStores[0] (models).upload[0].from")
    assert "is an empty directory" in message


def test_an_empty_file(tmp_path):
    (tmp_path / "model.joblib").write_bytes(b"")
    message = one({"modelStores": [store(upload=[{"from": str(tmp_path / "model.joblib"),
                                                   "to": "iris/model.joblib"}])]},
                  "modelStores[0] (models).upload[0].from")
    assert "is an empty file" in message


def test_a_model_archive_that_is_not_a_zip_is_refused(layout):
    # TorchServe unzips every .mar it loads; a Git LFS pointer or an HTML error page
    # saved as adder.mar would only fail in the pod.
    (layout / "model-store" / "adder.mar").write_text("version https://git-lfs.github.com/spec/v1\n")
    message = one(with_upload(layout), "modelStores[0] (models).upload[0].from")
    assert f"= {str(layout)!r}: model-store/adder.mar is not a zip archive" in message
    assert "torch-model-archiver" in message


def test_a_single_archive_upload_that_is_not_a_zip_is_refused(tmp_path):
    archive = tmp_path / "adder.mar"
    archive.write_bytes(b"\x1f\x8b not a zip")
    message = one({"modelStores": [store(upload=[{"from": str(archive),
                                                   "to": "torchserve/model-store/adder.mar"}])]},
                  "modelStores[0] (models).upload[0].from")
    assert "adder.mar is not a zip archive" in message


def test_the_example_archive_is_accepted():
    config = parse(with_upload(EXAMPLE))
    assert config.storage.stores[0].uploads[0].files


def test_a_relative_source_is_read_from_the_project_directory():
    message = one(with_upload("examples/torchserve/no-such-dir"),
                  "modelStores[0] (models).upload[0].from")
    assert str(ROOT / "examples/torchserve/no-such-dir") in message


def test_upload_targets_must_stay_inside_the_claim_and_not_overlap(tmp_path):
    (tmp_path / "a").write_bytes(b"x")
    found = problems({"modelStores": [store(upload=[
        {"from": str(tmp_path / "a"), "to": "../etc/passwd"},
        {"from": str(tmp_path / "a"), "to": "models"},
        {"from": str(tmp_path / "a"), "to": "models/a"},
        {"from": str(tmp_path / "a")}])]})
    assert any("upload[0].to = '../etc/passwd'" in p and "'..'" in p for p in found)
    assert any("upload[2].to = 'models/a'" in p and "overlaps the target 'models'" in p for p in found)
    assert any("upload[3].to = (not set): required." in p for p in found)


# ---------------------------------------------------------------- rule: size is a quantity

@pytest.mark.parametrize("size", ["10 GB", "-1Gi", "0", "1.5.2Gi", True, "ten"])
def test_a_size_that_is_not_a_quantity(size):
    message = one({"modelStores": [store(size=size)]}, "modelStores[0] (models).size")
    assert f"= {size!r}: not a storage quantity" in message and "e.g. 10Gi" in message


def test_a_missing_size():
    message = one({"modelStores": [store(size=None)]}, "modelStores[0] (models).size")
    assert "required" in message


def test_uploads_larger_than_the_claim_warn(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 2048)
    config = parse({"modelStores": [store(size="1Ki", upload=[{"from": str(tmp_path / "big"),
                                                               "to": "big"}])],
                    "models": [pytorch_model("pvc://models/big")]})
    assert any("modelStores[0] (models).size = '1Ki'" in w and "2048 bytes" in w
               for w in config.warnings)


# ---------------------------------------------------------------- rule: ReadWriteMany on local-path

def test_read_write_many_on_local_path():
    message = one({"modelStores": [store(accessMode="ReadWriteMany")]},
                  "modelStores[0] (models).accessMode")
    assert "'ReadWriteMany'" in message and "only makes ReadWriteOnce" in message
    assert "storage.nfs" in message


def test_read_write_many_on_an_explicit_local_path_class():
    message = one({"storage": {"provisioner": "none"},
                   "modelStores": [store(storageClass="local-path", accessMode="ReadWriteMany")]},
                  "modelStores[0] (models).accessMode")
    assert "only makes ReadWriteOnce" in message


def test_a_misspelt_access_mode_gets_a_guess():
    message = one({"modelStores": [store(accessMode="ReadWriteOnse")]},
                  "modelStores[0] (models).accessMode")
    assert "did you mean 'ReadWriteOnce'?" in message


# ---------------------------------------------------------------- rule: TorchServe layout

def test_a_pytorch_upload_without_config_properties(layout):
    (layout / "config" / "config.properties").unlink()
    message = one(with_upload(layout), "models[0] (torchserve).storageUri")
    assert ("do not fit KServe's TorchServe runtime: the path has no "
            "config/config.properties") in message and "--ts-config" in message


def test_a_pytorch_upload_without_a_model_archive(layout):
    (layout / "model-store" / "adder.mar").rename(layout / "adder.mar")
    message = one(with_upload(layout), "models[0] (torchserve).storageUri")
    assert "has no model-store/*.mar" in message


def test_model_snapshot_continued_over_lines_is_refused(layout):
    properties = layout / "config" / "config.properties"
    text = properties.read_text().replace('"modelCount":1,', '"modelCount":1,\\\n  ')
    properties.write_text(text)
    message = one(with_upload(layout), "models[0] (torchserve).storageUri")
    # One sentence that reads: what is wrong, in which file, then why.
    assert ("storageUri = 'pvc://models/torchserve': the TorchServe files at this path do not "
            "fit KServe's TorchServe runtime: model_snapshot in config/config.properties is not "
            "JSON on one line (") in message


def test_model_snapshot_naming_a_missing_archive(layout):
    properties = layout / "config" / "config.properties"
    properties.write_text(properties.read_text().replace('"adder.mar"', '"bert.mar"'))
    message = one(with_upload(layout), "models[0] (torchserve).storageUri")
    assert "names bert.mar for model 'adder'" in message and "found: adder.mar" in message


def test_keys_the_kserve_wrapper_needs(layout):
    properties = layout / "config" / "config.properties"
    lines = [l for l in properties.read_text().splitlines()
             if not l.startswith(("grpc_inference_port", "model_snapshot"))]
    properties.write_text("\n".join(lines) + "\n")
    found = [p for p in problems(with_upload(layout)) if "models[0]" in p]
    assert any("lacks grpc_inference_port" in p for p in found)
    assert any("has no model_snapshot" in p for p in found)


def test_model_store_must_be_where_the_runtime_mounts_it(layout):
    properties = layout / "config" / "config.properties"
    properties.write_text(properties.read_text().replace(
        "model_store=/mnt/models/model-store", "model_store=/home/model-server/model-store"))
    message = one(with_upload(layout), "models[0] (torchserve).storageUri")
    assert "model_store=/mnt/models/model-store" in message


def test_the_layout_is_checked_across_uploads_and_only_under_the_model_path(tmp_path, layout):
    # config/ and model-store/ from two uploads under one model path: one layout.
    config = parse({"modelStores": [store(upload=[
        {"from": str(layout / "config"), "to": "torchserve/config"},
        {"from": str(layout / "model-store"), "to": "torchserve/model-store"}])],
        "models": [pytorch_model()]})
    assert config.serving.models[0].served_names == ("adder",)
    # A path nothing is uploaded to cannot be checked here: no problem, no name.
    config = parse({"modelStores": [store()], "models": [pytorch_model("pvc://models/elsewhere")]})
    assert config.serving.models[0].served_name == "torchserve"


def test_properties_are_read_as_the_kserve_wrapper_reads_them():
    # One key per line, split at the first "=", stripped; no escapes, no continuations.
    text = "# a comment\ninference_address = http://0.0.0.0:8085\nload_models=a=b\nno separator\n"
    assert torchserve.read_properties(text) == {
        "inference_address": "http://0.0.0.0:8085", "load_models": "a=b"}


def test_several_served_models_keep_their_order(layout):
    properties = layout / "config" / "config.properties"
    properties.write_text(properties.read_text().replace(
        '"models":{"adder":', '"models":{"zeta":{"1.0":{"marName":"adder.mar"}},"adder":'))
    config = parse(with_upload(layout))
    assert config.serving.models[0].served_names == ("zeta", "adder")


# ---------------------------------------------------------------- rule: namespaces no model uses

def test_a_store_or_secret_in_a_namespace_no_model_uses_warns():
    config = parse({"modelStores": [store(namespace="lonely")],
                    "storageSecrets": [{"name": "minio", "namespace": "elsewhere",
                                        "endpoint": "minio.local:9000", **KEYS}]},
                   secret_keys={"storageSecrets"})
    warnings = config.warnings
    assert any(w.startswith("kserve-cluster:modelStores[0] (models).namespace = 'lonely'")
               and "no model uses this namespace" in w for w in warnings)
    assert any(w.startswith("kserve-cluster:storageSecrets[0] (minio).namespace = 'elsewhere'")
               for w in warnings)
    assert config.storage.namespaces == ("lonely", "elsewhere")


# ---------------------------------------------------------------- rule: S3 keys never in plain text

def s3_stack(secret_extra=None, model_extra=None):
    secret = {"name": "minio", "namespace": "kserve-test", "endpoint": "minio.minio:9000",
              "useHttps": False, **KEYS, **(secret_extra or {})}
    model = {"name": "iris", "namespace": "kserve-test", "format": "sklearn",
             "storageUri": "s3://models/iris", "storageSecret": "minio", **(model_extra or {})}
    return {"storageSecrets": [secret], "models": [model]}


def test_s3_keys_given_as_pulumi_secrets_are_accepted():
    config = parse(s3_stack(), secret_keys={"storageSecrets"})
    [secret] = config.storage.secrets
    assert (secret.access_key_id, secret.secret_access_key) == tuple(KEYS.values())
    assert (secret.endpoint, secret.use_https, secret.verify_ssl) == ("minio.minio:9000", False, True)
    assert KEYS["secretAccessKey"] not in repr(config)  # never in a printed config


def test_s3_keys_in_plain_text_are_refused_without_showing_them():
    found = problems(s3_stack())  # storageSecrets not set with --secret
    keyed = [p for p in found if ".accessKeyId" in p or ".secretAccessKey" in p]
    assert len(keyed) == 2
    for message in keyed:
        assert "is given in plain text" in message
        assert "pulumi config set --secret --path 'storageSecrets[0]." in message
    for message in found:
        assert KEYS["accessKeyId"] not in message and KEYS["secretAccessKey"] not in message


def test_a_stack_file_with_one_key_encrypted_and_one_plain_is_refused():
    # What a tool sees: the file keeps {secure: ...}; the plain one is in the file for all to read.
    extra = s3_stack({"accessKeyId": {"secure": "v1:abc"}})
    [message] = [p for p in problems(extra, {"storageSecrets"}) if ".secretAccessKey" in p]
    assert "plain text" in message and KEYS["secretAccessKey"] not in message
    both = s3_stack({"accessKeyId": {"secure": "v1:abc"}, "secretAccessKey": {"secure": "v1:def"}})
    assert parse(both, {"storageSecrets"}).storage.secrets[0].access_key_id == ""


def test_missing_keys_say_how_to_set_them():
    extra = s3_stack()
    del extra["storageSecrets"][0]["secretAccessKey"]
    message = one(extra, "storageSecrets[0] (minio).secretAccessKey", {"storageSecrets"})
    assert "required" in message and "--secret --path 'storageSecrets[0].secretAccessKey'" in message


def test_a_misspelt_key_name_does_not_echo_its_value():
    extra = s3_stack()
    extra["storageSecrets"][0]["secretAccesKey"] = extra["storageSecrets"][0].pop("secretAccessKey")
    found = problems(extra, {"storageSecrets"})
    assert any("secretAccesKey = '<hidden>'" in p and "did you mean 'secretAccessKey'" in p
               for p in found)
    assert not any(KEYS["secretAccessKey"] in p for p in found)


def test_endpoint_is_host_and_port_without_a_scheme():
    message = one(s3_stack({"endpoint": "http://minio:9000"}), "storageSecrets[0] (minio).endpoint",
                  {"storageSecrets"})
    assert "useHttps: false" in message


# ---------------------------------------------------------------- rule: s3:// on a non-AWS store needs a secret

def test_s3_without_a_secret_while_the_stack_has_a_non_aws_store():
    extra = s3_stack()
    del extra["models"][0]["storageSecret"]
    message = one(extra, "models[0] (iris).storageUri", {"storageSecrets"})
    assert "s3:// without storageSecret" in message and "kserve-test/minio" in message
    assert "add storageSecret:" in message


def test_s3_without_a_secret_is_fine_when_every_store_is_aws():
    extra = s3_stack({"endpoint": "s3.eu-west-1.amazonaws.com"})
    extra["models"].append({"name": "public", "namespace": "kserve-test", "format": "sklearn",
                            "storageUri": "s3://public-bucket/iris"})
    config = parse(extra, {"storageSecrets"})
    assert config.serving.models[1].storage_secret is None


def test_storage_secret_naming_nothing_or_on_a_non_s3_model():
    found = problems(s3_stack(model_extra={"storageSecret": "minoi",
                                           "storageUri": "gs://bucket/iris"}), {"storageSecrets"})
    assert any("storageSecret = 'minoi': no storageSecrets entry of that name." in p for p in found)
    assert any("storageSecret = 'minoi': given, but the model is not read from s3://" in p
               for p in found)


def test_the_secret_name_default_is_refused():
    message = one(s3_stack({"name": "default"}, {"storageSecret": "default"}),
                  "storageSecrets[0] (default).name", {"storageSecrets"})
    assert "default one" in message


# ---------------------------------------------------------------- storage settings

def test_storage_settings_problems_all_at_once():
    found = problems({"storage": {"provisioner": "local-pat", "nfs": {"server": "not a host!"},
                                  "class": "x"}})
    assert any("storage.provisioner = 'local-pat': unknown provisioner; did you mean 'local-path'?"
               in p for p in found)
    assert any("storage.class = 'x': unknown key" in p for p in found)
    # The misspelt provisioner is taken as nfs (storage.nfs is given): its server is checked.
    assert any("storage.nfs.server = 'not a host!': not an IP address or host name." in p
               for p in found)
    conflict = problems({"storage": {"provisioner": "local-path",
                                     "nfs": {"server": "10.0.2.5", "path": "/x"}}})
    assert any(p.startswith("kserve-cluster:storage.nfs = ") and "is local-path" in p
               for p in conflict)


def test_nfs_needs_server_and_path():
    found = problems({"storage": {"provisioner": "nfs", "nfs": {"path": "exports"}}})
    assert any("storage.nfs.server = (not set): required." in p for p in found)
    assert any("storage.nfs.path = 'exports': not an absolute path." in p for p in found)


def test_nfs_path_with_a_control_character_is_refused_as_for_backups():
    # The same check as backup.nfs (components/problems.py check_nfs_export): the
    # path ends up in mount options on every node.
    for section in ("storage", "backup"):
        found = problems({section: {"nfs": {"server": "10.0.2.5", "path": "/exports\nmodels"}}})
        assert any(f"{section}.nfs.path = " in p and "not an absolute path" in p for p in found), found


def test_every_storage_problem_is_reported_together(tmp_path):
    found = problems({"storage": {"provisioner": "bogus"},
                      "modelStores": [store(size="big", accessMode="ReadWriteMany",
                                            upload=[{"from": str(tmp_path / "nope"), "to": "x"}])],
                      "models": [pytorch_model("pvc://nothing/x")]})
    assert len(found) >= 4
