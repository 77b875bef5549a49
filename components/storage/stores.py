"""A model store: its claim, and the uploads that fill it from the operator's machine.

Each upload takes two steps:
1. every file goes to the control plane with pulumi-command's CopyToRemote
   (SFTP, streamed), into a staging directory under the login user's home; one
   copy step per file, whose trigger is the file's SHA-256, so a changed file is
   sent again and an unchanged one never is;
2. `upload-to-claim.sh` checks the staged files against the manifest (name and
   SHA-256 of each) and replaces the upload's target in the claim with them,
   through a short-lived pod that mounts the claim. Its input is the manifest:
   it runs again when any file of this upload changes, and only then.

Removing an upload entry runs the step's delete: the target goes from the claim
and the staged copy from the control plane. When the whole cluster is destroyed
the step is skipped (deleted with the cluster): the nodes' reset removes the
local volumes and the staging directory.
"""
from __future__ import annotations

import hashlib
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import remote

from components import versions
from components.cluster.commands import node_command
from components.serving.context import ClusterHandle, k8s_options
from components.storage import files
from components.storage.config import ModelStore, Upload

# Under the control plane login user's home: CopyToRemote writes as that user.
STAGING_ROOT = ".kserve-cluster/uploads"
UPLOAD_TIMEOUT_SECONDS = "900"  # the first pod of a claim may pull the helper image


def _short(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def staging_dir(store: ModelStore, upload: Upload) -> str:
    return f"{STAGING_ROOT}/{store.namespace}/{store.name}/{_short(upload.target)}"


def helper_pod(store: ModelStore, upload: Upload) -> str:
    return f"kserve-upload-{_short(f'{store.key}/{upload.target}')}"


def upload_env(store: ModelStore, upload: Upload, login_user: str, action: str) -> dict[str, str]:
    """Inputs of scripts/node/upload-to-claim.sh (pure, tested alone)."""
    return {
        "ACTION": action, "NAMESPACE": store.namespace, "CLAIM": store.name,
        "TARGET": upload.target, "KIND": "directory" if upload.is_directory else "file",
        "STAGING": staging_dir(store, upload), "LOGIN_USER": login_user,
        "HELPER_IMAGE": versions.UPLOAD_HELPER_IMAGE, "POD": helper_pod(store, upload),
        "TIMEOUT_SECONDS": UPLOAD_TIMEOUT_SECONDS,
    }


def claim_spec(store: ModelStore) -> k8s.core.v1.PersistentVolumeClaimSpecArgs:
    return k8s.core.v1.PersistentVolumeClaimSpecArgs(
        access_modes=[store.access_mode],
        storage_class_name=store.storage_class,
        resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": store.size}))


class ModelStoreClaim(pulumi.ComponentResource):
    """`uploads`: the last step of each upload; models that read the store wait for them."""

    def __init__(self, cluster: ClusterHandle, store: ModelStore, namespace: pulumi.Resource,
                 provisioner: Sequence[pulumi.Resource],
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:storage:ModelStore", f"{store.namespace}-{store.name}",
                         None, opts)
        self.claim = k8s.core.v1.PersistentVolumeClaim(
            f"claim-{store.namespace}-{store.name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=store.name, namespace=store.namespace,
                # A WaitForFirstConsumer claim stays Pending until the upload pod (or the
                # model) mounts it; that pod is the readiness check.
                annotations={"pulumi.com/skipAwait": "true"}),
            spec=claim_spec(store),
            opts=k8s_options(self, cluster, depends_on=[namespace, *provisioner]))
        connection = cluster.control_plane_connection
        login_user = connection.user
        # A claim that was made anew (another uid) is filled again.
        claim_uid = self.claim.metadata.apply(lambda m: (m.uid if m else None) or "")
        self.uploads: list[remote.Command] = []
        # target -> the upload's content hash: models reading it restart when it changes.
        self.digests: dict[str, str] = {}
        previous: list[pulumi.Resource] = []
        for upload in store.uploads:
            hashed = [(f.relative, files.sha256_file(f.absolute)) for f in upload.files]
            self.digests[upload.target] = files.upload_digest(hashed, upload.target)
            label = f"{store.namespace}-{store.name}/{upload.target}"
            staging = staging_dir(store, upload)
            copies = [remote.CopyToRemote(
                f"stage-{label}" + (f"/{local.relative}" if upload.is_directory else ""),
                connection=connection, source=pulumi.FileAsset(local.path),
                remote_path=f"{staging}/{local.relative}",
                # Sent again when its content changes, or when the control plane is
                # rebuilt (its reset removes the staging directory).
                triggers=[digest, cluster.teardown.id],
                opts=pulumi.ResourceOptions(parent=self))
                for local, (_, digest) in zip(upload.files, hashed)]
            step = node_command(
                f"upload-{label}", connection, "upload-to-claim.sh",
                upload_env(store, upload, login_user, "sync"),
                stdin=files.manifest(hashed),
                delete_script="upload-to-claim.sh",
                delete_env=upload_env(store, upload, login_user, "remove"),
                triggers=[claim_uid],
                # Uploads of one store one after the other: the first pod of a
                # ReadWriteOnce local claim decides its node, the others follow it.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self.claim, *copies, *previous],
                    deleted_with=cluster.teardown,
                    # A replaced step (a new claim) removes its target before it fills it again.
                    delete_before_replace=True))
            self.uploads.append(step)
            previous = [step]
        self.register_outputs({"claim": store.key, "digests": self.digests,
                               "uploads": [u.target for u in store.uploads]})


def covers(target: str, path: str) -> bool:
    """Whether an upload to `target` puts files under the model path `path` of the claim."""
    return not path or target == path or target.startswith(path + "/") \
        or path.startswith(target + "/")
