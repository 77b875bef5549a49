"""Evaluate the real program (__main__.py) offline, under Pulumi's mock runtime.

`evaluate(config)` runs the program for a stack config and returns every
resource it registered, with its inputs, parent, dependencies, provider,
deleted_with target and which inputs were sent as secrets. No Pulumi engine,
plugin, backend or cluster is needed: the tests assert on this record, and the
offline plan prints it. Remote commands do not run; their outputs are made up
by `ClusterMocks` (a join line, a kubeconfig) so that the program's data flow
can be followed.
"""
from __future__ import annotations

import asyncio
import base64
import datetime
import functools
import hashlib
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.problems import PROJECT

ROOT = Path(__file__).resolve().parents[2]
SECRET_SIG = "4dabf18193072939515e22adb298388d"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

# A made-up but well-formed key and join line: what the mocks answer with.
FAKE_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nbW9jay1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n"


def fake_join_command(worker: str, endpoint: str = "10.0.2.21:6443") -> str:
    """Deterministic per worker, so two evaluations can be compared."""
    digest = hashlib.sha256(worker.encode()).hexdigest()
    token = f"{digest[:6]}.{digest[6:22]}"
    return (f"kubeadm join {endpoint} --token {token} "
            f"--discovery-token-ca-cert-hash sha256:{'ab' * 32}\n")


def fake_control_plane_join_command(node: str, endpoint: str = "10.0.2.20:8443") -> str:
    """What control-plane-join-key.sh prints: a join line with a certificate key."""
    key = hashlib.sha256(f"key-{node}".encode()).hexdigest()
    return fake_join_command(node, endpoint).rstrip("\n") + \
        f" --control-plane --certificate-key {key}\n"


# What scripts/node/preflight-facts.sh prints on a fresh Ubuntu 22.04 node fit for
# every layer, monitoring included (so the plan shows no warning from made-up facts).
HEALTHY_NODE_FACTS = "\n".join([
    "time=1795000000.0", "sudo=ok", "os_id=ubuntu", "os_version=22.04",
    "os_name=Ubuntu 22.04.5 LTS", "hostname=node", "product_uuid=uuid", "macs=mac",
    "cpus=4", "memory_mb=16000", "swap_mb=0", "ports_busy=", "dpkg_lock=free",
    "unreachable_urls=", "leftovers=", ""])
# What a `gpu: nvidia` node adds: one NVIDIA GPU, no driver yet, room for one.
HEALTHY_GPU_FACTS = "\n".join([
    "gpu_devices=1", "nvidia_driver=absent", "secure_boot=disabled", "kernel_headers=present",
    "disk_free_mb=50000", ""])


def fake_user_kubeconfig(user: str, endpoint: str = "10.0.2.21:6443") -> str:
    """What `kubeadm kubeconfig user` prints, with made-up key material."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kubernetes", "cluster": {"server": f"https://{endpoint}",
                                                        "certificate-authority-data": "Q0E="}}],
        "users": [{"name": user, "user": {"client-certificate-data": "Q0VSVA==",
                                          "client-key-data": "S0VZ"}}],
        "contexts": [{"name": f"{user}@kubernetes", "context": {"cluster": "kubernetes", "user": user}}],
        "current-context": f"{user}@kubernetes",
    })


TLS_PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
# The program reads its own stack's last outputs (components/access/project_removal.py).
STACK_REFERENCE = "pulumi:pulumi:StackReference"


def session_rsa_key(bits: int = 2048) -> tuple[str, str]:
    """(private PEM, public PEM) of an RSA key made once per process: what a
    pulumi-tls PrivateKey holds in the state, the same for every evaluation."""
    return _rsa_key(int(bits))


@functools.lru_cache(maxsize=None)
def _rsa_key(bits: int) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def provider_outputs(type_: str, inputs: dict,
                     previous_outputs: Optional[dict[str, Any]] = None) -> dict:
    """Outputs a provider computes, for the resource types that have some the
    program reads (a pulumi-tls key's PEMs, the stack's last outputs as a
    StackReference reads them: `previous_outputs`, none on a first `up`); {} for the
    others."""
    if type_ == STACK_REFERENCE:
        return {"outputs": dict(previous_outputs or {}), "secretOutputNames": []}
    if type_ == TLS_PRIVATE_KEY:
        private, public = session_rsa_key(inputs.get("rsaBits") or 2048)
        return {"privateKeyPem": private, "publicKeyPem": public}
    return {}


# What a read of the ingress CA's Secret returns under the mocks (not a real certificate).
MOCK_CA_PEM = "-----BEGIN CERTIFICATE-----\nbW9jayBDQQ==\n-----END CERTIFICATE-----\n"

# The admin kubeconfig read from the control plane: kubeadm names its user kubernetes-admin.
FAKE_KUBECONFIG = fake_user_kubeconfig("kubernetes-admin")


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict
    dependencies: list[str]
    provider: str
    deleted_with: str
    plain: str = ""  # the inputs as JSON with every secret value blanked out
    secret_paths: set[str] = field(default_factory=set)
    unknown_paths: set[str] = field(default_factory=set)
    additional_secret_outputs: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    aliases: list[dict] = field(default_factory=list)  # as the SDK sent them (alias specs)
    delete_before_replace: bool = False


def _blank_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return "[secret]"
        return {key: _blank_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_blank_secrets(item) for item in value]
    return value


def _walk(value: Any, path: str, secrets: set[str], unknowns: set[str]) -> None:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            secrets.add(path)
            _walk(value.get("value"), path, secrets, unknowns)
            return
        for key, item in value.items():
            _walk(item, f"{path}.{key}" if path else key, secrets, unknowns)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", secrets, unknowns)
    elif value == UNKNOWN:
        unknowns.add(path)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.options: dict[tuple[str, str], dict] = {}

    def RegisterResource(self, request):
        # Options the mocks cannot see in their arguments, for mocks that act like
        # the engine (tests/lab/runner.py honours ignore_changes).
        self.options[(request.type, request.name)] = {"ignore_changes": list(request.ignoreChanges)}
        response = super().RegisterResource(request)
        raw = json_format.MessageToDict(request.object)
        secrets: set[str] = set()
        unknowns: set[str] = set()
        _walk(raw, "", secrets, unknowns)
        self.registrations.append(Registration(
            type=request.type, name=request.name, urn=response.urn, parent=request.parent,
            custom=request.custom,
            inputs=pulumi.runtime.rpc.deserialize_properties_unwrap_secrets(request.object)[0],
            dependencies=list(request.dependencies), provider=request.provider,
            deleted_with=request.deletedWith, plain=json.dumps(_blank_secrets(raw)),
            secret_paths=secrets, unknown_paths=unknowns,
            additional_secret_outputs=list(request.additionalSecretOutputs),
            ignore_changes=list(request.ignoreChanges),
            aliases=[json_format.MessageToDict(alias) for alias in request.aliases],
            delete_before_replace=bool(request.deleteBeforeReplace)))
        return response


class ClusterMocks(pulumi.runtime.Mocks):
    """Answers like the providers would: remote.Command gets a stdout that fits
    the script it runs (a join command, a kubeconfig). In preview no command
    runs, so their outputs stay unknown, as on a fresh stack."""

    def __init__(self, preview: bool, command_stdout: Optional[Callable[[str, dict], str]] = None,
                 previous_outputs: Optional[dict[str, Any]] = None):
        """`previous_outputs`: the stack outputs of the last `pulumi up` (none: a
        first `up`), which the program reads back through a StackReference."""
        self.preview = preview
        self.command_stdout = command_stdout or self.default_stdout
        self.previous_outputs = previous_outputs

    @staticmethod
    def default_stdout(name: str, inputs: dict) -> str:
        if name.endswith("-preflight"):
            gpu = HEALTHY_GPU_FACTS if "GPU=nvidia" in str(inputs.get("create", "")) else ""
            return gpu + HEALTHY_NODE_FACTS.replace("hostname=node", f"hostname={name}").replace(
                "product_uuid=uuid", f"product_uuid=uuid-{name}").replace(
                "macs=mac", f"macs=02:00:{hashlib.sha256(name.encode()).hexdigest()[:8]}")
        if name.endswith("-join-key"):
            return fake_control_plane_join_command(name.removesuffix("-join-key"))
        if name.endswith("-join-token"):
            return fake_join_command(name.removesuffix("-join-token"))
        if name.endswith("-admin-kubeconfig"):
            return FAKE_KUBECONFIG
        if name.startswith("member-kubeconfig-"):
            return fake_user_kubeconfig(name.removeprefix("member-kubeconfig-"))
        return f"ran {name}\n"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "command:remote:Command" and not self.preview:
            state.update(stdout=self.command_stdout(args.name, args.inputs), stderr="")
        if args.typ == STACK_REFERENCE:  # read in a preview as well
            state.update(provider_outputs(args.typ, args.inputs, self.previous_outputs))
        elif not self.preview:  # in a preview of a fresh stack, provider outputs are unknown
            state.update(provider_outputs(args.typ, args.inputs))
        if args.typ == "kubernetes:core/v1:Secret" and args.resource_id:
            # A Secret read from the cluster (the ingress CA that cert-manager wrote).
            state["data"] = {"tls.crt": base64.b64encode(MOCK_CA_PEM.encode()).decode()}
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def _quiet_unretrieved(loop, context):
    if "never retrieved" not in context.get("message", ""):
        loop.default_exception_handler(context)


@dataclass
class Evaluation:
    registrations: list[Registration]
    outputs: dict[str, Any]

    def by_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def named(self, name: str) -> Registration:
        found = [r for r in self.registrations if r.name == name]
        assert len(found) == 1, f"expected one resource named {name!r}, found {len(found)}"
        return found[0]

    def urn_of(self, name: str) -> str:
        return self.named(name).urn

    def commands(self) -> list[Registration]:
        return self.by_type("command:remote:Command")


def _date_text(value: Any) -> str:
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"a config value of type {type(value).__name__} is not JSON")


def _json(value: Any) -> str:
    """A config value as the Pulumi CLI hands it over: JSON, an unquoted YAML date
    (`expires: 2026-12-31`) as its text."""
    return json.dumps(value, default=_date_text)


def evaluate(config: dict[str, Any], *, preview: bool = False, stack: str = "test",
             secret_private_key: Optional[str] = FAKE_PRIVATE_KEY,
             mocks: Optional[pulumi.runtime.Mocks] = None,
             namespaced: Optional[dict[str, Any]] = None,
             secret_config: Optional[dict[str, Any]] = None) -> Evaluation:
    """Run __main__.py for `config` (keys without the project prefix); `namespaced`
    adds keys as a stack file writes them (`namespace:key`); `secret_config` adds
    project keys marked secret, as `pulumi config set --secret` (or `--path`) does."""
    mocks = mocks or ClusterMocks(preview)
    monitor = RecordingMonitor(mocks)
    # Each evaluation starts clean, as pulumi.runtime.test does: no RPC or error
    # left over from an earlier one, and a fresh Stack resource (ROOT is a ContextVar).
    pulumi.runtime.settings.SETTINGS.rpc_manager.clear()
    pulumi.runtime.settings.SETTINGS.outputs.clear()
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview,
                             monitor=monitor)
    full = {f"{PROJECT}:{key}": value if isinstance(value, str) else _json(value)
            for key, value in config.items()}
    full.update({key: value if isinstance(value, str) else _json(value)
                 for key, value in (namespaced or {}).items()})
    for key, value in (secret_config or {}).items():
        full[f"{PROJECT}:{key}"] = value if isinstance(value, str) else _json(value)
    secret_keys = [f"{PROJECT}:{key}" for key in (secret_config or {})]
    if secret_private_key is not None:
        full[f"{PROJECT}:sshPrivateKey"] = secret_private_key
        secret_keys.append(f"{PROJECT}:sshPrivateKey")
    pulumi.runtime.set_all_config(full, secret_keys)
    outputs: dict[str, Any] = {}

    def program():
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    try:
        _sync_await(run_pulumi_func(program))
    except Exception as error:
        # What was registered before the failure, for tests that check how far it got.
        error.registrations = monitor.registrations  # type: ignore[attr-defined]
        # Every output that waited on the failed one holds the same error; asyncio
        # would print each of them as "never retrieved" when it is collected.
        asyncio.get_event_loop().set_exception_handler(_quiet_unretrieved)
        raise
    stack_resource = pulumi.runtime.settings.get_root_resource()
    if stack_resource is not None and getattr(stack_resource, "outputs", None) is not None:
        outputs = dict(stack_resource.outputs)
    return Evaluation(monitor.registrations, outputs)
