"""Stack config of storage: `storage`, `modelStores` and `storageSecrets` (pure).

Validated with the rest of the stack config, so that every problem is reported
at once, before any node is touched. Upload sources are looked at here (they
exist, are not empty, a .mar is a zip archive, a TorchServe model has its
layout); they are hashed later, by the component that uploads them.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from components.problems import (
    DNS1123_SUBDOMAIN, Problems, check_bool, check_list, check_mapping, check_name, check_nfs_export, check_text,
    NamesInNamespaces, close_match, is_host, item_key)
from components.namespaces import ReservedNamespaces, check_namespace
from components.quantity import is_quantity, parse_quantity
from components.serving.config import Model, ServingConfig
from components.config_secrets import encrypted_in_file, holds_encrypted
from components.serving import huggingface
from components.storage import files, torchserve

LOCAL_PATH, NFS, NONE = "local-path", "nfs", "none"
PROVISIONERS = (LOCAL_PATH, NFS, NONE)
# The classes the two provisioners create (the manifest's class; the chart's default name).
CLASS_OF = {LOCAL_PATH: "local-path", NFS: "nfs-client"}
READ_WRITE_ONCE, READ_WRITE_MANY = "ReadWriteOnce", "ReadWriteMany"
ACCESS_MODES = (READ_WRITE_ONCE, READ_WRITE_MANY)

STORAGE_KEYS = {"provisioner", "nfs"}
NFS_KEYS = {"server", "path"}
STORE_KEYS = {"name", "namespace", "size", "storageClass", "accessMode", "upload"}
UPLOAD_KEYS = {"from", "to"}
SECRET_KEYS = {"name", "namespace", "endpoint", "region", "useHttps", "verifySsl",
               "accessKeyId", "secretAccessKey"}
KEY_PAIR = ("accessKeyId", "secretAccessKey")
SECRETS_KEY = "storageSecrets"
HIDDEN = "<hidden>"  # what a message shows instead of a key

# A storage quantity: a whole or decimal number with a binary or decimal suffix.
_ENDPOINT = re.compile(r"^([^:/\s]+)(:(\d{1,5}))?$")
_BAD_NAME_CHARACTERS = re.compile(r"[\\\n\r\0]")


@dataclass(frozen=True)
class StorageSettings:
    provisioner: str = NONE
    nfs_server: str = ""
    nfs_path: str = ""

    @property
    def class_name(self) -> Optional[str]:
        """The default StorageClass this stack installs, or None."""
        return CLASS_OF.get(self.provisioner)

    @property
    def node_packages(self) -> tuple[str, ...]:
        """Packages every node needs: kubelet mounts NFS volumes with mount.nfs."""
        return ("nfs-common",) if self.provisioner == NFS else ()


@dataclass(frozen=True)
class Upload:
    source: str   # `from` as written
    target: str   # `to`: a path inside the claim ("/"-separated, no leading "/")
    is_directory: bool
    files: tuple[files.LocalFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def landing(self) -> dict[str, files.LocalFile]:
        """Where each file lands in the claim: `target/relative` (a file upload: `target`)."""
        if not self.is_directory:
            return {self.target: self.files[0]}
        return {f"{self.target}/{f.relative}": f for f in self.files}


@dataclass(frozen=True)
class ModelStore:
    name: str
    namespace: str
    size: str
    storage_class: Optional[str]  # None: the cluster's default class
    access_mode: str
    uploads: tuple[Upload, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def files_under(self, path: str) -> Optional[dict[str, files.LocalFile]]:
        """The uploaded files under `path` of the claim (names relative to it), or
        None when no upload puts anything there."""
        prefix = path.strip("/")
        found = {}
        for upload in self.uploads:
            for landed, local in upload.landing().items():
                if not prefix:
                    found[landed] = local
                elif landed.startswith(prefix + "/"):
                    found[landed[len(prefix) + 1:]] = local
        return found or None


@dataclass(frozen=True)
class StorageSecret:
    name: str
    namespace: str
    endpoint: str
    region: Optional[str]
    use_https: bool
    verify_ssl: bool
    # Plain values at run time; "" when a tool read them encrypted from the stack file.
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def on_aws(self) -> bool:
        return is_aws_endpoint(self.endpoint)


@dataclass(frozen=True)
class StorageConfig:
    settings: StorageSettings = StorageSettings()
    stores: tuple[ModelStore, ...] = ()
    secrets: tuple[StorageSecret, ...] = ()

    @property
    def enabled(self) -> bool:
        """False for a stack that asks for no storage at all: nothing is added to it."""
        return self.settings.provisioner != NONE or bool(self.stores or self.secrets)

    @property
    def namespaces(self) -> tuple[str, ...]:
        names = [s.namespace for s in self.stores] + [s.namespace for s in self.secrets]
        return tuple(dict.fromkeys(n for n in names if n))

    def store(self, namespace: str, name: str) -> Optional[ModelStore]:
        return next((s for s in self.stores if (s.namespace, s.name) == (namespace, name)), None)


def is_aws_endpoint(endpoint: str) -> bool:
    host = endpoint.split(":", 1)[0].lower()
    return host == "amazonaws.com" or host.endswith(".amazonaws.com")


def split_pvc_uri(uri: str) -> Optional[tuple[str, str]]:
    """`pvc://<claim>/<path>` -> (claim, path); None for another scheme."""
    if not isinstance(uri, str) or not uri.startswith("pvc://"):
        return None
    claim, _, path = uri[len("pvc://"):].partition("/")
    return claim, path.strip("/")


# ---------------------------------------------------------------- storage

def _parse_settings(problems: Problems, raw: Any, have_stores: bool) -> StorageSettings:
    storage = check_mapping(problems, "storage", raw,
                            "give {provisioner: local-path} (the default), "
                            "{nfs: {server, path}} or {provisioner: none}.")
    problems.unknown_keys("storage", storage, STORAGE_KEYS)
    nfs = check_mapping(problems, "storage.nfs", storage.get("nfs"),
                        "give {server: 10.0.2.5, path: /exports/models}.")
    problems.unknown_keys("storage.nfs", nfs, NFS_KEYS)
    # Nothing asked for storage: nothing is installed (existing stacks stay as they are).
    default = NFS if nfs else (LOCAL_PATH if raw is not None or have_stores else NONE)
    provisioner = storage.get("provisioner", default)
    if provisioner not in PROVISIONERS:
        guess = close_match(provisioner, PROVISIONERS)
        problems.add("storage.provisioner", provisioner, "unknown provisioner"
                     + (f"; did you mean {guess!r}?" if guess else "."),
                     "use local-path (node-local volumes), nfs (with storage.nfs) or none "
                     "(the cluster already has a default StorageClass).")
        provisioner = default
    if provisioner != NFS and "nfs" in storage:
        problems.add("storage.nfs", storage["nfs"],
                     f"given, but storage.provisioner is {provisioner}.",
                     "remove storage.provisioner (nfs is then the default), or remove storage.nfs.")
    server = path = ""
    if provisioner == NFS:
        server, path = check_nfs_export(problems, "storage.nfs", nfs, "/exports/models")
    return StorageSettings(provisioner=provisioner, nfs_server=server, nfs_path=path)


# ---------------------------------------------------------------- model stores

def _quantity(problems: Problems, key: str, value: Any) -> str:
    if value is None:
        problems.required(key, "give the claim's size, e.g. 10Gi.")
        return ""
    if not is_quantity(value) or parse_quantity(value) <= 0:
        problems.add(key, value, "not a storage quantity.",
                     "give a positive size with a unit, e.g. 10Gi or 500Mi.")
        return ""
    return str(value)


def quantity_bytes(text: str) -> int:
    return int(parse_quantity(text))


def _target(problems: Problems, key: str, value: Any) -> str:
    fix = "give a path inside the claim, relative to its root, e.g. torchserve or models/iris."
    if value is None:
        problems.required(key, fix)
        return ""
    if not isinstance(value, str) or not value.strip("/") or _BAD_NAME_CHARACTERS.search(value):
        problems.add(key, value, "not a path inside the claim.", fix)
        return ""
    parts = value.strip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        problems.add(key, value, "must not contain empty, '.' or '..' parts.", fix)
        return ""
    return "/".join(parts)


def _parse_upload(problems: Problems, key: str, item: Any) -> Optional[Upload]:
    if not isinstance(item, dict):
        problems.add(key, item, "must be an object.", "give {from: <local path>, to: <path in the claim>}.")
        return None
    problems.unknown_keys(key, item, UPLOAD_KEYS)
    target = _target(problems, f"{key}.to", item.get("to"))
    source = item.get("from")
    if source is None:
        problems.required(f"{key}.from", "give a file or directory on this machine, relative "
                          "to the project directory or absolute, e.g. examples/torchserve/model.")
        return None
    if not isinstance(source, str) or not source.strip():
        problems.add(f"{key}.from", source, "must be a path.",
                     "give a file or directory on this machine, e.g. examples/torchserve/model.")
        return None
    path = files.resolve(source)
    if not path.exists():
        problems.add(f"{key}.from", source, f"no such file or directory ({path}).",
                     "give an existing path, relative to the project directory or absolute.")
        return None
    try:
        listed = files.list_files(path)
    except files.ListingError as error:
        problems.add(f"{key}.from", source, f"cannot be uploaded: {error}.",
                     "remove that entry from the directory, or upload a directory without it.")
        return None
    except OSError as error:
        problems.add(f"{key}.from", source, f"cannot be read ({error.strerror}).",
                     "make it readable by the user who runs pulumi.")
        return None
    if not listed:
        problems.add(f"{key}.from", source, "is an empty directory: there is nothing to upload.",
                     "put the model files in it, or point `from` at the directory that has them.")
        return None
    if not path.is_dir() and listed[0].size == 0:
        problems.add(f"{key}.from", source, "is an empty file: there is nothing to upload.",
                     "point `from` at the model file itself.")
        return None
    odd = [f.relative for f in listed if _BAD_NAME_CHARACTERS.search(f.relative)]
    if odd:
        problems.add(f"{key}.from", source, f"has file names with a backslash or a line break "
                     f"({', '.join(repr(o) for o in odd[:3])}).", "rename those files.")
        return None
    broken = [f.relative for f in listed
              if f.relative.endswith(torchserve.ARCHIVE_SUFFIX) and not files.is_zip(f.absolute)]
    if broken:
        problems.add(f"{key}.from", source, *torchserve.archive_problem(broken))
        return None
    if not target:
        return None
    return Upload(source=source, target=target, is_directory=path.is_dir(), files=tuple(listed))


def _parse_uploads(problems: Problems, key: str, raw: Any) -> list[Upload]:
    uploads = []
    for j, item in enumerate(check_list(problems, f"{key}.upload", raw,
                                        "give a list of {from, to}.")):
        upload = _parse_upload(problems, f"{key}.upload[{j}]", item)
        if upload is not None:
            for earlier in uploads:
                a, b = earlier.target, upload.target
                if a == b or a.startswith(b + "/") or b.startswith(a + "/"):
                    problems.add(f"{key}.upload[{j}].to", b,
                                 f"overlaps the target {a!r} of another upload: each upload "
                                 "owns its path in the claim (it is replaced on every change).",
                                 "give each upload its own path, neither inside the other.")
                    break
            else:
                uploads.append(upload)
    return uploads


def _parse_stores(problems: Problems, raw: Any, settings: StorageSettings,
                  reserved: ReservedNamespaces) -> list[ModelStore]:
    stores = []
    names = NamesInNamespaces(problems, "give every store its own name.")
    for i, item in enumerate(check_list(problems, "modelStores", raw,
                                        "write modelStores as a YAML list of "
                                        "{name, namespace, size, upload}.")):
        key = item_key("modelStores", i, item)
        if not isinstance(item, dict):
            problems.add(key, item, "must be an object.", "give {name, namespace, size, upload}.")
            continue
        problems.unknown_keys(key, item, STORE_KEYS)
        name = check_name(problems, f"{key}.name", item.get("name"), "models")
        namespace = check_namespace(
            problems, f"{key}.namespace",
            check_name(problems, f"{key}.namespace", item.get("namespace"), "kserve-test"),
            reserved, "model store")
        if name and namespace:
            names.first_time(key, namespace, name)
        size = _quantity(problems, f"{key}.size", item.get("size"))
        storage_class = item.get("storageClass")
        if storage_class is not None and (not isinstance(storage_class, str)
                                          or not DNS1123_SUBDOMAIN.match(storage_class)):
            problems.add(f"{key}.storageClass", storage_class, "not a StorageClass name.",
                         "give the name of a class of the cluster, or remove the key for "
                         f"the default ({settings.class_name or 'the cluster default'}).")
            storage_class = None
        storage_class = storage_class or settings.class_name
        default_mode = READ_WRITE_MANY if storage_class == CLASS_OF[NFS] else READ_WRITE_ONCE
        mode = item.get("accessMode", default_mode)
        if mode not in ACCESS_MODES:
            guess = close_match(mode, ACCESS_MODES)
            problems.add(f"{key}.accessMode", mode, "unknown access mode"
                         + (f"; did you mean {guess!r}?" if guess else "."),
                         f"use {READ_WRITE_ONCE} (one node at a time) or {READ_WRITE_MANY} "
                         "(several nodes; needs a shared backend such as NFS).")
            mode = default_mode
        elif mode == READ_WRITE_MANY and storage_class == CLASS_OF[LOCAL_PATH]:
            problems.add(f"{key}.accessMode", mode,
                         "local-path volumes live on one node's disk: the provisioner only "
                         "makes ReadWriteOnce volumes.",
                         f"use {READ_WRITE_ONCE}, or set storage.nfs: {{server, path}} for "
                         "volumes that several nodes share.")
            mode = READ_WRITE_ONCE
        if storage_class is None:
            problems.warn(f"{key}.storageClass", None,
                          "no class given and storage.provisioner is none: the claim uses the "
                          "cluster's default StorageClass (a kubeadm cluster has none of its "
                          "own), and stays Pending without one.",
                          "name a class the cluster has, or remove storage.provisioner: none.")
        uploads = _parse_uploads(problems, key, item.get("upload"))
        total = sum(u.size for u in uploads)
        if size and total > quantity_bytes(size):
            problems.warn(f"{key}.size", size, f"is smaller than its uploads ({total} bytes): "
                          "claims that enforce their size will run out of space.",
                          "give a size larger than the files, e.g. twice their size.")
        stores.append(ModelStore(name=name, namespace=namespace, size=size,
                                 storage_class=storage_class, access_mode=mode,
                                 uploads=tuple(uploads)))
    return stores


# ---------------------------------------------------------------- S3 secrets

def _secret_value(problems: Problems, key: str, value: Any, index: int, runtime_secret: bool,
                  file_view: bool) -> str:
    how = f"pulumi config set --secret --path '{SECRETS_KEY}[{index}].{key.rsplit('.', 1)[-1]}'"
    if value is None:
        problems.required(key, f"give it as a secret: `{how} <value>` (it never goes into "
                          "the stack file in plain text).")
        return ""
    if encrypted_in_file(value):
        return ""  # encrypted in the stack file: only the Pulumi CLI can read it
    if not isinstance(value, str) or not value:
        problems.add(key, HIDDEN, "must be a non-empty string.", f"set it with `{how} <value>`.")
        return ""
    if file_view or not runtime_secret:
        problems.add(key, HIDDEN, "is given in plain text: anyone who reads the stack file or "
                     "the Pulumi state would see it.",
                     f"remove it from the stack file and set it with `{how} <value>`.")
        return ""
    return value


def _parse_secrets(problems: Problems, raw: Any, secret_keys: frozenset[str],
                   reserved: ReservedNamespaces) -> list[StorageSecret]:
    file_view = holds_encrypted(raw)  # a tool read the stack file: secrets are {secure: ...}
    runtime_secret = SECRETS_KEY in secret_keys
    secrets = []
    names = NamesInNamespaces(problems, "give every secret its own name.")
    for i, item in enumerate(check_list(problems, SECRETS_KEY, raw,
                                        "write storageSecrets as a YAML list of "
                                        "{name, namespace, endpoint, region, useHttps, verifySsl}.")):
        key = item_key(SECRETS_KEY, i, item)
        if not isinstance(item, dict):
            problems.add(key, HIDDEN, "must be an object.",
                         "give {name, namespace, endpoint, region, useHttps, verifySsl}.")
            continue
        # Unknown keys are reported without their values: a misspelt key may hold a key.
        problems.unknown_keys(key, {k: HIDDEN for k in item}, SECRET_KEYS)
        name = check_name(problems, f"{key}.name", item.get("name"), "minio")
        if name == "default":
            problems.add(f"{key}.name", name, "the ServiceAccount of the same name would be "
                         "the namespace's default one, used by every pod.",
                         "pick another name, e.g. minio.")
            name = ""
        namespace = check_namespace(
            problems, f"{key}.namespace",
            check_name(problems, f"{key}.namespace", item.get("namespace"), "kserve-test"),
            reserved, "storage secret")
        if name and namespace:
            names.first_time(key, namespace, name)
        endpoint = item.get("endpoint")
        if endpoint is None:
            problems.required(f"{key}.endpoint", "give the S3 endpoint as host:port, e.g. "
                              "minio.minio.svc.cluster.local:9000 or s3.amazonaws.com.")
            endpoint = ""
        elif not isinstance(endpoint, str) or "://" in endpoint or not _ENDPOINT.match(endpoint) \
                or not is_host(_ENDPOINT.match(endpoint).group(1)):
            problems.add(f"{key}.endpoint", endpoint, "not host or host:port.",
                         "give it without a scheme, e.g. minio.example.internal:9000, and set "
                         "useHttps: false for plain HTTP.")
            endpoint = ""
        region = item.get("region")
        if region is not None:
            region = check_text(problems, f"{key}.region", region, "",
                                "give the region the store expects, e.g. us-east-1.") or None
        use_https = check_bool(problems, f"{key}.useHttps", item.get("useHttps"), True,
                               "write useHttps: false for an endpoint that speaks plain HTTP.")
        verify_ssl = check_bool(problems, f"{key}.verifySsl", item.get("verifySsl"), True,
                                "write verifySsl: false to accept a self-signed certificate.")
        access, secret = (_secret_value(problems, f"{key}.{k}", item.get(k), i, runtime_secret,
                                        file_view) for k in KEY_PAIR)
        secrets.append(StorageSecret(name=name, namespace=namespace, endpoint=endpoint,
                                     region=region, use_https=use_https, verify_ssl=verify_ssl,
                                     access_key_id=access, secret_access_key=secret))
    return secrets


def parse_storage_config(problems: Problems, storage: Any, stores: Any, secrets: Any,
                         secret_keys: frozenset[str] = frozenset(),
                         reserved: ReservedNamespaces = ReservedNamespaces()) -> StorageConfig:
    """`reserved`: the namespaces the cluster's layers own, refused for stores and secrets."""
    have_stores = isinstance(stores, list) and bool(stores)
    settings = _parse_settings(problems, storage, have_stores)
    return StorageConfig(settings=settings,
                         stores=tuple(_parse_stores(problems, stores, settings, reserved)),
                         secrets=tuple(_parse_secrets(problems, secrets, secret_keys, reserved)))


# ---------------------------------------------------------------- models x storage

def _check_pvc(problems: Problems, key: str, model: Model, uri: str,
               storage: StorageConfig) -> Optional[list[str]]:
    """Checks a pvc:// URI of `model`; returns the TorchServe names it serves, if known."""
    claim, path = split_pvc_uri(uri)
    store = storage.store(model.namespace, claim)
    if store is None:
        elsewhere = sorted(s.namespace for s in storage.stores if s.name == claim)
        if elsewhere:
            problems.add(key, uri, f"the store {claim!r} is in namespace "
                         f"{', '.join(elsewhere)}, the model in {model.namespace}: a pod only "
                         "mounts claims of its own namespace.",
                         f"declare a store in namespace {model.namespace}, or move the model.")
        else:
            declared = ", ".join(s.key for s in storage.stores) or "none"
            problems.add(key, uri, f"names the store {claim!r}, which modelStores does not "
                         f"declare (declared: {declared}).",
                         f"add {{name: {claim}, namespace: {model.namespace}, size: 10Gi}} to "
                         "modelStores, or fix the name in the URI.")
        return None
    if model.gpu and store.uploads and store.storage_class == CLASS_OF[LOCAL_PATH]:
        problems.add(key, uri, f"a GPU model reading the local-path store {claim!r}: a "
                     "local-path volume lives on the node of the first pod that mounts it, "
                     "the upload pod, which never runs on a GPU node (they are tainted), so "
                     "the model's pod could never be scheduled.",
                     "put this store on shared storage: set storage.nfs: {server, path} "
                     "(the store is then ReadWriteMany), or name a storageClass whose "
                     "volumes any node can mount.")
    if model.format == huggingface.FORMAT:
        _check_huggingface_files(problems, key, uri, store.files_under(path))
        return None
    if model.format != "pytorch":
        return None
    landed = store.files_under(path)
    if landed is None:
        return None  # nothing of ours goes there: the layout cannot be checked here
    layout = torchserve.check_layout(set(landed),
                                     lambda name: landed[name].absolute.read_text("utf-8"))
    for what, fix in layout.problems:
        problems.add(key, uri, "the TorchServe files at this path do not fit KServe's "
                     f"TorchServe runtime: {what}", fix)
    return layout.served_names or None


def _check_huggingface_files(problems: Problems, key: str, uri: str,
                             landed: Optional[dict[str, files.LocalFile]]) -> None:
    """The Hugging Face runtime reads the model's config.json (transformers'
    AutoConfig) from the model path. A warning, not an error: the example's
    directory is empty until its user downloads a model into it."""
    if landed is None or huggingface.CONFIG_FILE in landed:
        return
    problems.warn(key, uri, f"the files uploaded to this path have no "
                  f"{huggingface.CONFIG_FILE} at its top: the Hugging Face runtime could "
                  "not load them (is the upload's directory still empty?).",
                  "download the model into the upload's `from` directory first, e.g. "
                  "`huggingface-cli download ORG/MODEL --local-dir DIR` (docs/gpu.md).")


def check_storage_references(problems: Problems, serving: ServingConfig,
                             storage: StorageConfig) -> ServingConfig:
    """Models against stores and secrets; returns the models with the names their
    TorchServe archives are served under."""
    models = []
    non_aws = [s.key for s in storage.secrets if s.endpoint and not s.on_aws]
    for i, model in enumerate(serving.models):
        key = f"models[{i}] ({model.name})" if model.name else f"models[{i}]"
        uris = [("storageUri", model.storage_uri)]
        if model.canary is not None:
            uris.append(("canary.storageUri", model.canary.storage_uri))
        served: Optional[list[str]] = None
        for field_name, uri in uris:
            if split_pvc_uri(uri) is None:
                continue
            names = _check_pvc(problems, f"{key}.{field_name}", model, uri, storage)
            if names is not None and served is not None and names != served:
                problems.add(f"{key}.canary.storageUri", uri,
                             f"serves {', '.join(names)}, the primary {', '.join(served)}: both "
                             "revisions answer on one URL path.",
                             "give the canary's model_snapshot the same model names as the "
                             "primary's.")
            served = served or names
        s3 = [uri for _, uri in uris if isinstance(uri, str) and uri.startswith("s3://")]
        if model.storage_secret is not None:
            secret = next((s for s in storage.secrets if (s.namespace, s.name) ==
                           (model.namespace, model.storage_secret)), None)
            if secret is None:
                elsewhere = sorted(s.namespace for s in storage.secrets
                                   if s.name == model.storage_secret)
                problems.add(f"{key}.storageSecret", model.storage_secret,
                             (f"that secret is in namespace {', '.join(elsewhere)}, the model "
                              f"in {model.namespace}." if elsewhere else
                              "no storageSecrets entry of that name."),
                             f"declare it in storageSecrets with namespace: {model.namespace}.")
            if not s3:
                problems.add(f"{key}.storageSecret", model.storage_secret,
                             "given, but the model is not read from s3://: the secret only "
                             "holds S3 credentials.",
                             "remove storageSecret, or use an s3:// storageUri.")
        elif s3 and non_aws:
            problems.add(f"{key}.storageUri", s3[0],
                         "s3:// without storageSecret: KServe would read it from AWS S3 "
                         f"without credentials, while this stack declares the S3-compatible "
                         f"store(s) {', '.join(non_aws)}.",
                         "add storageSecret: <name of the storageSecrets entry> (in the "
                         "model's namespace) to read from that store.")
        models.append(dataclasses.replace(model, served_names=tuple(served or ())))
    used = {m.namespace for m in serving.models}
    for kind, items in (("modelStores", storage.stores), (SECRETS_KEY, storage.secrets)):
        for i, item in enumerate(items):
            if item.namespace and item.namespace not in used:
                problems.warn(f"{kind}[{i}] ({item.name}).namespace", item.namespace,
                              "no model uses this namespace, so nothing reads this "
                              f"{'store' if kind == 'modelStores' else 'secret'}.",
                              "put it in the namespace of the model that needs it, or remove it.")
    return dataclasses.replace(serving, models=tuple(models))
