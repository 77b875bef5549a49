"""The storage layer: the provisioner, the S3 secrets, the model stores and their uploads.

    nodes-ready -> provisioner -> claims -> uploads (one after the other per store)
                                         -> models reading pvc://<store>/...
    namespace -> S3 Secret + ServiceAccount -> models naming storageSecret

The provisioner is built with the layer; the claims and secrets need the model
namespaces, which the serving layer creates: `ModelWorkloads` calls `attach`
with them and makes each model wait for what `attach` returns for it.
"""
from __future__ import annotations

from typing import Optional

import hashlib

import pulumi

from components.serving.config import Model
from components.serving.context import ClusterHandle
from components.storage.config import StorageConfig, split_pvc_uri
from components.storage.provisioner import StorageProvisioner
from components.storage.secrets import S3Secret
from components.storage.stores import ModelStoreClaim, covers


class Storage(pulumi.ComponentResource):
    def __init__(self, cluster: ClusterHandle, storage: StorageConfig,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:storage:Storage", "storage", None, opts)
        self.cluster = cluster
        self.config = storage
        self.provisioner = StorageProvisioner(cluster, storage.settings,
                                              opts=pulumi.ResourceOptions(parent=self))
        self.stores: dict[tuple[str, str], ModelStoreClaim] = {}
        self.secrets: dict[tuple[str, str], S3Secret] = {}
        self.register_outputs({"storageClass": storage.settings.class_name,
                               "stores": [s.key for s in storage.stores]})

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Namespaces the stores and secrets need besides the models' own."""
        return self.config.namespaces

    def attach(self, namespaces: dict[str, pulumi.Resource]) -> None:
        """Create the claims, uploads and secrets, in their namespaces."""
        child = pulumi.ResourceOptions(parent=self)
        for store in self.config.stores:
            self.stores[store.namespace, store.name] = ModelStoreClaim(
                self.cluster, store, namespaces[store.namespace], self.provisioner.ready,
                opts=child)
        for secret in self.config.secrets:
            self.secrets[secret.namespace, secret.name] = S3Secret(
                self.cluster, secret, namespaces[secret.namespace], opts=child)

    def model_after(self, model: Model) -> list[pulumi.Resource]:
        """What a model waits for: its store's uploads (or claim), its S3 secret."""
        after: list[pulumi.Resource] = []
        uris = [model.storage_uri] + ([model.canary.storage_uri] if model.canary else [])
        for uri in uris:
            parts = split_pvc_uri(uri)
            store = self.stores.get((model.namespace, parts[0])) if parts else None
            if store is not None:
                after += store.uploads or [store.claim]
        secret = self.secrets.get((model.namespace, model.storage_secret or ""))
        if secret is not None:
            after += [secret.secret, secret.account]
        return list(dict.fromkeys(after))

    def model_revision(self, model: Model) -> str:
        """A hash of the uploaded files a model reads ("" when it reads none): in its
        spec, so that new files make KServe start new pods, which load them."""
        found = []
        uris = [model.storage_uri] + ([model.canary.storage_uri] if model.canary else [])
        for uri in uris:
            parts = split_pvc_uri(uri)
            store = self.stores.get((model.namespace, parts[0])) if parts else None
            if store is not None:
                found += [f"{uri} {target} {digest}" for target, digest in store.digests.items()
                          if covers(target, parts[1])]
        return hashlib.sha256("\n".join(found).encode()).hexdigest()[:16] if found else ""
