"""Stack config of the serving layers: `serving`, `runtimes` and `models`.

Pure Python, validated together with the cluster config so that every problem
is reported at once. Each problem names the key, the value and the fix.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from components import versions
from components.config_secrets import encrypted_in_file, holds_encrypted
from components.namespaces import ReservedNamespaces, check_namespace
from components.quantity import is_byte_amount, is_quantity
from components.problems import (
    DNS1123_SUBDOMAIN, Problems, check_bool, check_int, check_mapping, check_name, check_text,
    NamesInNamespaces, close_match, item_key)
from components.storage.model_keys import MODEL_STORAGE_KEYS, parse_storage_secret
from components.serving.scaling import Scaling, parse_scaling
from components.gpu.config import parse_model_gpu
from components.serving import huggingface

SERVERLESS = "Serverless"
RAW_DEPLOYMENT = "RawDeployment"
DEPLOYMENT_MODES = (SERVERLESS, RAW_DEPLOYMENT)
# KServe v0.16 renamed the modes (Serverless -> Knative, RawDeployment -> Standard): the
# stack key takes either name; the program keeps the old ones and each train's KServe
# gets its own name for the mode (versions.Train.kserve_deployment_mode).
DEPLOYMENT_MODE_ALIASES = {"Knative": SERVERLESS, "Standard": RAW_DEPLOYMENT}
NODE_PORT_RANGE = (30000, 32767)  # the default --service-node-port-range
DEFAULT_NODE_PORT = 31903  # what the classic lab used
DEFAULT_HTTPS_NODE_PORT = 31904
DEFAULT_DOMAIN = "example.com"

# Formats served by the cluster runtimes of the pinned KServe release.
# A custom runtime in `runtimes` adds its own formats.
CLUSTER_RUNTIME_FORMATS = frozenset({
    "tensorflow", "sklearn", "xgboost", "lightgbm", "pytorch", "onnx", "triton",
    "pmml", "paddle", "huggingface", "mlflow",
})
# What KServe's storage initializer (ClusterStorageContainer "default") fetches.
STORAGE_SCHEMES = ("gs", "s3", "pvc", "http", "https", "hdfs", "webhdfs")
# oci:// (the model in a container image) is KServe's "modelcars". The program keeps them
# off on every train (kserve.storage.enableModelcar: false, components/serving/kserve.py;
# the 1.31 train's chart default, while the v0.15+ charts turn them on): the storage initializer
# then gets the URI and cannot fetch it. See OCI_REFUSED.
OCI_REFUSED = (
    "KServe as installed here cannot serve a model from a container image: oci:// needs "
    "KServe's modelcars, which this project keeps off on every train "
    f"(kserve.storage.enableModelcar: false). On the 1.31 train (KServe {versions.KSERVE_VERSION}) "
    "they are also "
    "experimental: the model server may start before the model image is pulled, and after a "
    "node reboot the pod keeps failing on its existing model link (fixed upstream in 0.14 "
    "and 0.15).")

# KServe names a model's top-level host after its predictor's, with the first
# "-predictor" cut out (KServe at the pinned tag, pkg/controller/v1beta1/inferenceservice/reconcilers/
# ingress/ingress_reconciler.go:106, strings.Replace(host, "-predictor", "", 1)): a model
# whose own name contains it gets another host than `<name>.<namespace>.<domain>`.
PREDICTOR_SUFFIX = "-predictor"
PREDICTOR_REFUSED = (
    "a model name containing '-predictor' is served at an unexpected host: KServe derives the "
    "model's host from its predictor's ('{name}-predictor') by cutting out the first "
    "'-predictor', which gives '{derived}-predictor...', not '{name}...'.")

SERVING_KEYS = {"deploymentMode", "ingressDomain", "ingressNodePort", "httpsNodePort", "smokeTest",
                "tls"}
TLS_KEYS = {"certificate", "privateKey"}
TLS_HIDDEN = "<hidden>"  # what a message shows instead of a certificate or key
RUNTIME_KEYS = {"name", "namespace", "image", "args", "env", "modelFormats"}
FORMAT_KEYS = {"name", "version"}
MODEL_KEYS = {"name", "namespace", "format", "storageUri", "runtime", "resources", "canary",
              *MODEL_STORAGE_KEYS, "scaling", "public"}
RESOURCE_KEYS = {"cpu", "memory", "gpu"}
CANARY_KEYS = {"storageUri", "trafficPercent"}


@dataclass(frozen=True)
class ModelFormat:
    name: str
    version: Optional[str] = None


@dataclass(frozen=True)
class Runtime:
    name: str
    namespace: str
    image: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    model_formats: tuple[ModelFormat, ...] = ()


@dataclass(frozen=True)
class Canary:
    storage_uri: str
    traffic_percent: int


@dataclass(frozen=True)
class Model:
    name: str
    namespace: str
    format: str
    storage_uri: str
    runtime: Optional[str] = None
    cpu: str = "500m"
    memory: str = "1Gi"
    canary: Optional[Canary] = None
    # An S3 secret of `storageSecrets` (components/storage): the predictor runs as
    # the ServiceAccount of that name.
    storage_secret: Optional[str] = None
    # The names TorchServe serves, read from the uploaded config.properties.
    served_names: tuple[str, ...] = ()
    scaling: Optional[Scaling] = None  # None: KServe's defaults
    # In a project's namespace: callable without a token (components/access).
    public: bool = False
    gpu: int = 0  # whole NVIDIA GPUs per predictor pod (components/gpu)

    @property
    def key(self) -> str:
        """`namespace/name`: unique in a stack (one name may be used in two namespaces)."""
        return f"{self.namespace}/{self.name}"

    @property
    def served_name(self) -> str:
        """The name in `/v1/models/<name>:predict`: TorchServe's (model_snapshot), else the model's."""
        return self.served_names[0] if self.served_names else self.name


@dataclass(frozen=True)
class TlsConfig:
    """The operator's own certificate (PEM, chain allowed) and key for the gateway's
    HTTPS port. Empty when a tool read them encrypted from the stack file."""
    certificate: str = field(default="", repr=False)
    private_key: str = field(default="", repr=False)


DEFAULT_MODELS = (Model(name="tf-flower", namespace="kserve-test", format="tensorflow",
                        storage_uri="gs://kfserving-examples/models/tensorflow/flowers"),)


@dataclass(frozen=True)
class ServingConfig:
    deployment_mode: str = SERVERLESS
    ingress_domain: str = DEFAULT_DOMAIN
    ingress_node_port: int = DEFAULT_NODE_PORT
    https_node_port: int = DEFAULT_HTTPS_NODE_PORT
    smoke_test: bool = True
    # None: cert-manager issues the gateway's certificate from the stack's own CA.
    tls: Optional[TlsConfig] = None
    runtimes: tuple[Runtime, ...] = ()
    models: tuple[Model, ...] = field(default=DEFAULT_MODELS)
    # The release train (kubernetes.version picks it): the layers install its versions.
    train: versions.Train = versions.DEFAULT_TRAIN

    @property
    def serverless(self) -> bool:
        return self.deployment_mode == SERVERLESS

    @property
    def namespaces(self) -> tuple[str, ...]:
        names = [r.namespace for r in self.runtimes] + [m.namespace for m in self.models]
        return tuple(dict.fromkeys(names))


_name = check_name


def _storage_uri(problems: Problems, key: str, value: Any) -> str:
    if value is None:
        problems.required(key, "give where the model files are, e.g. "
                          "gs://kfserving-examples/models/tensorflow/flowers.")
        return ""
    scheme = value.split("://", 1)[0] if isinstance(value, str) and "://" in value else None
    if scheme == "oci":
        problems.add(key, value, OCI_REFUSED,
                     "put the model files in a bucket, on a web server or on a volume and use "
                     "gs://, s3://, https:// or pvc://, "
                     "e.g. gs://kfserving-examples/models/tensorflow/flowers.")
        return ""
    if scheme not in STORAGE_SCHEMES:
        problems.add(key, value, "not a storage URI KServe can fetch.",
                     f"use one of the schemes {', '.join(s + '://' for s in STORAGE_SCHEMES)}, "
                     "e.g. gs://kfserving-examples/models/tensorflow/flowers.")
        return ""
    return value


def _model_storage_uri(problems: Problems, key: str, value: Any, fmt: Any) -> str:
    """A model's storageUri; a huggingface model's must not be on the hub (or absent)."""
    if fmt == huggingface.FORMAT and huggingface.check_storage_uri(problems, key, value):
        return ""
    return _storage_uri(problems, key, value)


def _check_resource_name(problems: Problems, taken: dict[str, tuple[str, str, str]], key: str,
                         namespace: str, name: str, label: str) -> None:
    """The program names a model's resources `<namespace>-<name>`: `a-b/c` and `a/b-c`
    would both be `a-b-c`, and Pulumi needs every resource name once."""
    joined = f"{namespace}-{name}"
    other = taken.setdefault(joined, (namespace, name, label))
    if other[:2] != (namespace, name):
        problems.add(key, name, f"{namespace}/{name} and {other[0]}/{other[1]} ({other[2]}) "
                     f"would both be named {joined!r} in the program's resources.",
                     "rename one of the two models or namespaces.")


def _tls_value(problems: Problems, key: str, value: Any, runtime_secret: bool, file_view: bool,
               marker: str) -> str:
    how = f"pulumi config set --secret --path 'serving.tls.{key}' < FILE.pem"
    full_key = f"serving.tls.{key}"
    if value is None:
        problems.required(full_key, f"give both the certificate and its key, as secrets: `{how}`.")
        return ""
    if encrypted_in_file(value):
        return ""  # encrypted in the stack file: only the Pulumi CLI can read it
    if file_view or not runtime_secret:
        # Never echo the value back.
        problems.add(full_key, TLS_HIDDEN, "is given in plain text: anyone who reads the stack "
                     "file would see it.", f"remove it from the stack file and set it with `{how}`.")
        return ""
    if not isinstance(value, str) or marker not in value:
        problems.add(full_key, TLS_HIDDEN, f"not a PEM text with '{marker}'.",
                     f"set the PEM file's text with `{how}`.")
        return ""
    return value


def _parse_tls(problems: Problems, raw: Any, runtime_secret: bool) -> Optional[TlsConfig]:
    """`serving.tls`: the operator's certificate and key, both secrets; absent: the
    stack's own CA issues the gateway's certificate."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add("serving.tls", TLS_HIDDEN, "must be an object.",
                     "give {certificate, privateKey}, each set with "
                     "`pulumi config set --secret --path`.")
        return None
    # Unknown keys are reported without their values: a misspelt key may hold a key.
    problems.unknown_keys("serving.tls", {k: TLS_HIDDEN for k in raw}, TLS_KEYS)
    file_view = holds_encrypted(raw)
    return TlsConfig(
        certificate=_tls_value(problems, "certificate", raw.get("certificate"), runtime_secret,
                               file_view, "-----BEGIN CERTIFICATE-----"),
        private_key=_tls_value(problems, "privateKey", raw.get("privateKey"), runtime_secret,
                               file_view, "PRIVATE KEY-----"))


def _parse_serving(problems: Problems, raw: Any, runtime_secret: bool = False) -> dict:
    """`runtime_secret`: the Pulumi CLI holds `serving` as a secret (a part of it was
    set with `pulumi config set --secret --path`)."""
    serving = check_mapping(problems, "serving", raw, "see the README's `serving` section.")
    problems.unknown_keys("serving", serving, SERVING_KEYS)
    mode = serving.get("deploymentMode", SERVERLESS)
    mode = DEPLOYMENT_MODE_ALIASES.get(mode, mode) if isinstance(mode, str) else mode
    if mode not in DEPLOYMENT_MODES:
        names = (*DEPLOYMENT_MODES, *DEPLOYMENT_MODE_ALIASES)
        guess = close_match(mode, names)
        problems.add("serving.deploymentMode", mode, "unknown deployment mode"
                     + (f"; did you mean {guess!r}?" if guess else "."),
                     f"use {SERVERLESS} (Knative, the default; KServe 0.16+ calls it Knative) "
                     f"or {RAW_DEPLOYMENT} (KServe 0.16+: Standard).")
        mode = SERVERLESS
    domain = serving.get("ingressDomain", DEFAULT_DOMAIN)
    if not isinstance(domain, str) or not DNS1123_SUBDOMAIN.match(domain) or "." not in domain:
        problems.add("serving.ingressDomain", domain, "not a DNS domain.",
                     "give the domain model hosts are named under, e.g. example.com.")
        domain = DEFAULT_DOMAIN
    low, high = NODE_PORT_RANGE
    node_port = check_int(problems, "serving.ingressNodePort", serving.get("ingressNodePort"),
                          DEFAULT_NODE_PORT, low, high,
                          f"pick a free node port, a whole number from {low} to {high}, "
                          f"e.g. {DEFAULT_NODE_PORT}.")
    https_port = check_int(problems, "serving.httpsNodePort", serving.get("httpsNodePort"),
                           DEFAULT_HTTPS_NODE_PORT, low, high,
                           f"pick a free node port, a whole number from {low} to {high}, "
                           f"e.g. {DEFAULT_HTTPS_NODE_PORT}.")
    if https_port == node_port:
        problems.add("serving.httpsNodePort", https_port,
                     "the gateway's plain HTTP port already has this node port "
                     "(serving.ingressNodePort).",
                     f"pick another, e.g. {node_port + 1 if node_port < high else node_port - 1}.")
    smoke = check_bool(problems, "serving.smokeTest", serving.get("smokeTest"), True,
                       "write smokeTest: false to skip the prediction after `pulumi up`.")
    return {"deployment_mode": mode, "ingress_domain": domain,
            "ingress_node_port": node_port, "https_node_port": https_port, "smoke_test": smoke,
            "tls": _parse_tls(problems, serving.get("tls"), runtime_secret)}


def _parse_runtimes(problems: Problems, raw: Any, reserved: ReservedNamespaces) -> list[Runtime]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add("runtimes", raw, "must be a list of serving runtimes.",
                     "write runtimes as a YAML list of {name, namespace, image, args, env, modelFormats}.")
        return []
    runtimes = []
    names = NamesInNamespaces(problems, "rename one of them, or merge the two entries.",
                              ": one ServingRuntime name can be declared once per namespace")
    for i, item in enumerate(raw):
        key = item_key("runtimes", i, item)
        if not isinstance(item, dict):
            problems.add(key, item, "must be an object.", "give {name, namespace, image, ...}.")
            continue
        problems.unknown_keys(key, item, RUNTIME_KEYS)
        name = _name(problems, f"{key}.name", item.get("name"), "custom-sklearn")
        namespace = check_namespace(
            problems, f"{key}.namespace",
            _name(problems, f"{key}.namespace", item.get("namespace"), "kserve-test"),
            reserved, "runtime")
        if name and namespace:
            names.first_time(key, namespace, name)
        if item.get("image") is None:
            problems.required(f"{key}.image", "give the container image that serves the model, "
                              "e.g. kserve/sklearnserver:<tag>.")
        image = check_text(problems, f"{key}.image", item.get("image"), "",
                           "give the container image, e.g. kserve/sklearnserver:<tag>.")
        args = item.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            problems.add(f"{key}.args", args, "must be a list of strings.",
                         "e.g. ['--model_name={{.Name}}', '--model_dir=/mnt/models'].")
            args = []
        env = check_mapping(problems, f"{key}.env", item.get("env"),
                            "give NAME: value pairs, e.g. PREDICT_PROBA: 'True'.")
        for env_name, env_value in env.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env_name) or \
                    not isinstance(env_value, (str, int, float, bool)):
                problems.add(f"{key}.env.{env_name}", env_value, "not a NAME: value pair.",
                             "names are letters, digits and '_'; values are strings (quote 'True').")
        formats = []
        raw_formats = item.get("modelFormats")
        if not isinstance(raw_formats, list) or not raw_formats:
            problems.add(f"{key}.modelFormats", raw_formats, "a runtime must list its model formats.",
                         "e.g. modelFormats: [{name: sklearn, version: '1'}].")
            raw_formats = []
        for j, fmt in enumerate(raw_formats):
            fmt_key = f"{key}.modelFormats[{j}]"
            if isinstance(fmt, str):
                fmt = {"name": fmt}
            if not isinstance(fmt, dict) or not isinstance(fmt.get("name"), str) or not fmt["name"]:
                problems.add(fmt_key, fmt, "a model format needs a name.", "e.g. {name: sklearn, version: '1'}.")
                continue
            problems.unknown_keys(fmt_key, fmt, FORMAT_KEYS)
            version = fmt.get("version")
            formats.append(ModelFormat(fmt["name"], None if version is None else str(version)))
        runtimes.append(Runtime(
            name=name, namespace=namespace, image=image, args=tuple(args),
            env=tuple((k, str(v)) for k, v in env.items()), model_formats=tuple(formats)))
    return runtimes


def _quantity(problems: Problems, key: str, value: Any, default: str) -> str:
    if value is None:
        return default
    if not is_quantity(value):
        problems.add(key, value, "not a Kubernetes quantity.", f"e.g. {default}.")
        return default
    return str(value)


def _cpu(problems: Problems, key: str, value: Any) -> str:
    """`resources.cpu`: a quantity of cores, not bytes."""
    if value is not None and is_byte_amount(value):
        problems.add(f"{key}.cpu", value, "a byte amount, not CPU cores.",
                     "write cores, e.g. '1' or 500m (memory goes in resources.memory).")
        return "500m"
    return _quantity(problems, f"{key}.cpu", value, "500m")


def _parse_models(problems: Problems, raw: Any, runtimes: list[Runtime], mode: str,
                  reserved: ReservedNamespaces) -> list[Model]:
    if raw is None:
        return list(DEFAULT_MODELS)
    if not isinstance(raw, list):
        problems.add("models", raw, "must be a list of models.",
                     "write models as a YAML list of {name, namespace, format, storageUri}.")
        return []
    custom = {(r.namespace, r.name): r for r in runtimes}
    formats = CLUSTER_RUNTIME_FORMATS | {f.name for r in runtimes for f in r.model_formats}
    models = []
    names = NamesInNamespaces(problems, "give every model its own name.")
    resource_names: dict[str, tuple[str, str, str]] = {}
    for i, item in enumerate(raw):
        key = item_key("models", i, item)
        if not isinstance(item, dict):
            problems.add(key, item, "must be an object.", "give {name, namespace, format, storageUri}.")
            continue
        problems.unknown_keys(key, item, MODEL_KEYS)
        name = _name(problems, f"{key}.name", item.get("name"), "tf-flower")
        namespace = check_namespace(
            problems, f"{key}.namespace",
            _name(problems, f"{key}.namespace", item.get("namespace"), "kserve-test"),
            reserved, "model")
        if name and PREDICTOR_SUFFIX in name:
            problems.add(f"{key}.name", name, PREDICTOR_REFUSED.format(
                                name=name, derived=name.replace(PREDICTOR_SUFFIX, "", 1)),
                         f"rename the model without '{PREDICTOR_SUFFIX}', e.g. "
                         f"{name.replace(PREDICTOR_SUFFIX, '-pred')!r}.")
            name = ""
        if name and namespace and names.first_time(key, namespace, name):
            _check_resource_name(problems, resource_names, f"{key}.name", namespace, name, key)
        fmt = item.get("format")
        if fmt is None:
            problems.required(f"{key}.format", f"use one of {', '.join(sorted(formats))}.")
        elif fmt not in formats:
            guess = close_match(fmt, formats)
            problems.add(f"{key}.format", fmt, "unknown model format"
                         + (f"; did you mean {guess!r}?" if guess else "."),
                         f"use one of {', '.join(sorted(formats))}, or declare a runtime for it "
                         "in `runtimes`.")
        storage = _model_storage_uri(problems, f"{key}.storageUri", item.get("storageUri"), fmt)
        runtime = item.get("runtime")
        if runtime is not None:
            here = custom.get((namespace, runtime))
            elsewhere = sorted(r.namespace for r in runtimes if r.name == runtime)
            if here is None and elsewhere:
                problems.add(f"{key}.runtime", runtime,
                             f"that runtime lives in namespace {', '.join(elsewhere)}, "
                             f"the model in {namespace}.",
                             "a ServingRuntime only serves models of its own namespace.")
            elif here is None:
                problems.add(f"{key}.runtime", runtime, "no runtime of that name in `runtimes`.",
                             "name one of the custom runtimes, or remove the key to let KServe "
                             "pick a cluster runtime by format.")
            elif fmt not in {f.name for f in here.model_formats}:
                problems.add(f"{key}.runtime", runtime, f"that runtime does not serve format {fmt!r}.",
                             "add the format to the runtime's modelFormats, or pick another runtime.")
        resources = check_mapping(problems, f"{key}.resources", item.get("resources"),
                                  "give {cpu: 500m, memory: 1Gi}.")
        problems.unknown_keys(f"{key}.resources", resources, RESOURCE_KEYS)
        canary = None
        if item.get("canary") is not None:
            raw_canary = check_mapping(problems, f"{key}.canary", item["canary"],
                                       "give {storageUri, trafficPercent}.")
            problems.unknown_keys(f"{key}.canary", raw_canary, CANARY_KEYS)
            percent = raw_canary.get("trafficPercent")
            if percent is None:
                problems.required(f"{key}.canary.trafficPercent",
                                  "give the share of requests for the canary, e.g. 10; 0 rolls back.")
            percent = check_int(problems, f"{key}.canary.trafficPercent", percent, 0, 0, 100,
                                "give a whole number from 0 to 100, e.g. 10 to send a tenth "
                                "of the requests to the canary; 0 rolls back.")
            if mode != SERVERLESS:
                problems.add(f"{key}.canary", raw_canary,
                             f"canary traffic splitting needs deploymentMode {SERVERLESS} "
                             "(it rides on Knative revisions).",
                             f"set serving.deploymentMode: {SERVERLESS}, or remove the canary.")
            canary = Canary(_model_storage_uri(problems, f"{key}.canary.storageUri",
                                               raw_canary.get("storageUri"), fmt), percent)
        models.append(Model(
            name=name, namespace=namespace, format=fmt if isinstance(fmt, str) else "",
            storage_uri=storage, runtime=runtime,
            cpu=_cpu(problems, f"{key}.resources", resources.get("cpu")),
            memory=_quantity(problems, f"{key}.resources.memory", resources.get("memory"), "1Gi"),
            canary=canary, storage_secret=parse_storage_secret(problems, key, item),
            scaling=parse_scaling(problems, f"{key}.scaling", item.get("scaling"), mode),
            public=check_bool(problems, f"{key}.public", item.get("public"), False,
                              "write public: true to let anyone call the model without a token."),
            gpu=parse_model_gpu(problems, f"{key}.resources.gpu", resources.get("gpu"))))
    return models


def parse_serving_config(problems: Problems, serving: Any, runtimes: Any, models: Any,
                         reserved: ReservedNamespaces = ReservedNamespaces(),
                         secret_keys: frozenset[str] = frozenset()) -> ServingConfig:
    """`reserved`: the namespaces the cluster's layers own, refused for models and runtimes;
    `secret_keys`: the top-level keys the Pulumi CLI holds as secrets (`serving.tls`)."""
    settings = _parse_serving(problems, serving, "serving" in secret_keys)
    parsed_runtimes = _parse_runtimes(problems, runtimes, reserved)
    parsed_models = _parse_models(problems, models, parsed_runtimes, settings["deployment_mode"],
                                  reserved)
    return ServingConfig(runtimes=tuple(parsed_runtimes), models=tuple(parsed_models), **settings)
