"""What the storage layer passes to upstream, checked against upstream's source at
the pinned tags, from the upstream reference data found through components/upstream.py
(never part of this repository; each test is skipped, with the reason, where its files
are absent):

- charts/nfs-subdir-external-provisioner-<chart version>/nfs-subdir-external-provisioner
  (kubernetes-sigs/nfs-subdir-external-provisioner, charts/nfs-subdir-external-provisioner
  at tag nfs-subdir-external-provisioner-<chart version>);
- local-path-provisioner-<version>/local-path-storage.yaml
  (rancher/local-path-provisioner, deploy/local-path-storage.yaml at that tag).
"""
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from components import upstream, versions
from components.storage.config import CLASS_OF, LOCAL_PATH, StorageSettings
from components.storage.provisioner import DEFAULT_CLASS_ANNOTATION, nfs_values
from upstream_needs import needs

NFS_CHART_FOUND = upstream.chart_source(upstream.ChartRef(
    versions.NFS_PROVISIONER_CHART, versions.NFS_PROVISIONER_CHART_VERSION,
    versions.NFS_PROVISIONER_CHART_REPO))
NFS_CHART = NFS_CHART_FOUND.path or Path("/nonexistent")
MANIFEST_FOUND = upstream.source(
    upstream.LOCAL_PATH_MANIFEST, f"local-path-provisioner manifest (rancher/local-path-provisioner "
    f"deploy/local-path-storage.yaml at {versions.LOCAL_PATH_PROVISIONER_VERSION})")
LOCAL_PATH_MANIFEST = MANIFEST_FOUND.path or Path("/nonexistent")
HELM_FOUND = upstream.helm()
HELM = str(HELM_FOUND.path or "/nonexistent/helm")
SETTINGS = StorageSettings(provisioner="nfs", nfs_server="10.0.2.5", nfs_path="/exports/models")

needs_chart = needs(NFS_CHART_FOUND)
needs_manifest = needs(MANIFEST_FOUND)


def leaf_paths(values, prefix=()):
    for key, value in values.items():
        if isinstance(value, dict):
            yield from leaf_paths(value, prefix + (key,))
        else:
            yield prefix + (key,)


@needs_chart
def test_every_nfs_value_is_a_key_of_the_charts_values_yaml():
    chart_values = yaml.safe_load((NFS_CHART / "values.yaml").read_text())
    chart = yaml.safe_load((NFS_CHART / "Chart.yaml").read_text())
    assert chart["version"] == versions.NFS_PROVISIONER_CHART_VERSION
    for path in leaf_paths(nfs_values(SETTINGS)):
        node = chart_values
        for key in path:
            assert isinstance(node, dict) and key in node, f"{'.'.join(path)} is not a chart value"
            node = node[key]
    assert chart_values["image"]["tag"] == versions.NFS_PROVISIONER_IMAGE_TAG
    assert chart_values["storageClass"]["name"] == CLASS_OF["nfs"]


@needs_chart
@needs(HELM_FOUND)
def test_the_nfs_chart_renders_a_default_class_that_archives(tmp_path):
    values = tmp_path / "values.json"
    values.write_text(json.dumps(nfs_values(SETTINGS)))
    rendered = subprocess.run([HELM, "template", "nfs-provisioner", str(NFS_CHART), "-f", str(values),
                               "--namespace", "nfs-provisioner"],
                              capture_output=True, text=True, check=True).stdout
    documents = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered) if d}
    storage_class = documents["StorageClass", "nfs-client"]
    assert storage_class["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true"
    assert storage_class["parameters"]["archiveOnDelete"] == "true"
    [deployment] = [d for (kind, _), d in documents.items() if kind == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == (f"{versions.NFS_PROVISIONER_IMAGE_REPOSITORY}:"
                                  f"{versions.NFS_PROVISIONER_IMAGE_TAG}")
    volume = deployment["spec"]["template"]["spec"]["volumes"][0]["nfs"]
    assert volume == {"server": "10.0.2.5", "path": "/exports/models"}


@needs_manifest
def test_the_local_path_manifest_is_what_the_program_and_reset_expect():
    documents = [d for d in yaml.safe_load_all(LOCAL_PATH_MANIFEST.read_text()) if d]
    [storage_class] = [d for d in documents if d["kind"] == "StorageClass"]
    assert storage_class["metadata"]["name"] == CLASS_OF[LOCAL_PATH]
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    assert storage_class["reclaimPolicy"] == "Delete"
    assert DEFAULT_CLASS_ANNOTATION not in (storage_class["metadata"].get("annotations") or {})
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert images == [versions.LOCAL_PATH_PROVISIONER_IMAGE]
    [config] = [d for d in documents if d["kind"] == "ConfigMap"]
    paths = json.loads(config["data"]["config.json"])["nodePathMap"][0]["paths"]
    reset = (Path(__file__).resolve().parents[1] / "scripts" / "node" / "reset.sh").read_text()
    assert paths == ["/opt/local-path-provisioner"] and f"rm -rf {paths[0]}" in reset
