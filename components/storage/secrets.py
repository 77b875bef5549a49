"""S3-compatible stores (MinIO, Ceph RGW, an on-prem S3): a Secret with the key
pair and KServe's S3 annotations, and a ServiceAccount that lists it.

The pinned KServe (pkg/credentials): a predictor's serviceAccountName is looked
up, each Secret it lists that holds the key named by the chart's
`credentials.s3.s3SecretAccessKeyName` (AWS_SECRET_ACCESS_KEY) becomes the
storage initializer's AWS_* environment, and the Secret's
`serving.kserve.io/s3-*` annotations set the endpoint, https, TLS check and
region. The endpoint is host[:port]; KServe adds the scheme.
"""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.serving.context import ClusterHandle, k8s_options
from components.storage.config import StorageSecret

ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
ANNOTATION_PREFIX = "serving.kserve.io/"


def s3_annotations(secret: StorageSecret) -> dict[str, str]:
    annotations = {
        f"{ANNOTATION_PREFIX}s3-endpoint": secret.endpoint,
        f"{ANNOTATION_PREFIX}s3-usehttps": "1" if secret.use_https else "0",
        f"{ANNOTATION_PREFIX}s3-verifyssl": "1" if secret.verify_ssl else "0",
    }
    if secret.region:
        annotations[f"{ANNOTATION_PREFIX}s3-region"] = secret.region
    return annotations


class S3Secret(pulumi.ComponentResource):
    """The Secret and the ServiceAccount (same name) of one `storageSecrets` entry."""

    def __init__(self, cluster: ClusterHandle, secret: StorageSecret,
                 namespace: pulumi.Resource, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:storage:S3Secret", f"{secret.namespace}-{secret.name}",
                         None, opts)
        # The key pair only ever travels as a secret Output: encrypted in the state,
        # blanked in previews and logs.
        keys = pulumi.Output.secret({ACCESS_KEY_ID: secret.access_key_id,
                                     SECRET_ACCESS_KEY: secret.secret_access_key})
        self.secret = k8s.core.v1.Secret(
            f"s3-secret-{secret.namespace}-{secret.name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=secret.name, namespace=secret.namespace,
                                                annotations=s3_annotations(secret)),
            type="Opaque", string_data=keys,
            opts=k8s_options(self, cluster, depends_on=[namespace]))
        self.account = k8s.core.v1.ServiceAccount(
            f"s3-account-{secret.namespace}-{secret.name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=secret.name, namespace=secret.namespace),
            secrets=[k8s.core.v1.ObjectReferenceArgs(name=secret.name)],
            opts=k8s_options(self, cluster, depends_on=[namespace, self.secret]))
        self.register_outputs({"serviceAccountName": secret.name})
