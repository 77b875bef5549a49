"""The stack config model and its validation.

Pure Python: no Pulumi import, so every rule is unit-tested on plain dicts.
`parse_stack_config` takes the project's config keys (without the
`kserve-cluster:` prefix, values already decoded from JSON) and returns a
`StackConfig`, or raises `ConfigError` listing every problem at once. Each
problem names the key, the bad value and the fix.
"""
from __future__ import annotations

import ipaddress
import os
import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

from components import versions
from components.access.config import AccessConfig, parse_access_config
from components.backup.config import BackupConfig, parse_backup_config
from components.serving.config import ServingConfig, parse_serving_config
from components.storage.config import (
    StorageConfig, check_storage_references, parse_storage_config)
from components.namespaces import ReservedNamespaces, monitoring_requested
from components.gpu.config import GpuConfig, parse_gpu_config, parse_node_gpu
from components.monitoring.config import (
    GRAFANA_PASSWORD_KEY, MonitoringConfig, parse_monitoring)
from components.cluster.certificates import (
    KEYS as CERTIFICATE_KEYS, CertificateSettings, parse_certificate_settings,
)
from components.upgrade.config import UpgradeConfig, parse_upgrade_config
from components.cluster.high_availability import (
    HighAvailability, check_control_plane_count, parse_high_availability)
from components.problems import (
    DNS1123_LABEL, DNS1123_RULE, PROJECT, ConfigError, Problems, check_bool, check_mapping,
    check_port, check_text, close_match, is_host, is_ip, item_key)

__all__ = ["ConfigError", "PROJECT", "StackConfig", "parse_stack_config", "parse_namespaced_config"]

CONTROL_PLANE = "control-plane"
WORKER = "worker"
ROLES = (CONTROL_PLANE, WORKER)

DEFAULT_SSH_USER = "ubuntu"
DEFAULT_SSH_PORT = 22
DEFAULT_POD_CIDR = "192.168.0.0/16"  # Calico's default pool
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"  # kubeadm's default
API_SERVER_PORT = 6443

# Top-level keys this project reads. The secret key is set with
# `pulumi config set sshPrivateKey --secret -- < key-file`.
SECRET_PRIVATE_KEY = "sshPrivateKey"
NODE_KEYS = {"name", "address", "role", "hostKey", "ssh", "gpu"}
NODE_SSH_KEYS = {"user", "port"}
SSH_KEYS = {"user", "port", "privateKeyPath", "useAgent", "bastion"}
BASTION_KEYS = {"address", "port", "user", "hostKey"}
KUBERNETES_KEYS = {"version", "podCidr", "serviceCidr", "controlPlaneEndpoint",
                   "highAvailability"} | CERTIFICATE_KEYS

# As in a .pub file or `preflight.py --trust`: type, base64, optionally a comment.
_HOST_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( \S.*)?$"
)


@dataclass(frozen=True)
class Bastion:
    address: str
    port: int = DEFAULT_SSH_PORT
    user: str = DEFAULT_SSH_USER
    host_key: Optional[str] = None


@dataclass(frozen=True)
class SshSettings:
    user: str = DEFAULT_SSH_USER
    port: int = DEFAULT_SSH_PORT
    private_key_path: Optional[str] = None
    use_agent: bool = False
    bastion: Optional[Bastion] = None


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    role: str
    ssh_user: str = DEFAULT_SSH_USER
    ssh_port: int = DEFAULT_SSH_PORT
    host_key: Optional[str] = None
    gpu: Optional[str] = None  # "nvidia" on GPU nodes (components/gpu)

    @property
    def is_control_plane(self) -> bool:
        return self.role == CONTROL_PLANE


@dataclass(frozen=True)
class KubernetesSettings:
    version: str  # without the leading "v", e.g. "1.31.7"
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    control_plane_endpoint: str = ""  # host:port
    certificates: CertificateSettings = CertificateSettings()
    # The virtual IP in front of the control planes (components/cluster/high_availability.py).
    high_availability: Optional[HighAvailability] = None

    @property
    def version_tag(self) -> str:
        return f"v{self.version}"

    @property
    def train(self) -> versions.Train:
        """The release train of this version's minor (checked when the config is parsed)."""
        return versions.train_for(self.version)

    @property
    def minor(self) -> str:
        return self.train.kubernetes_minor


@dataclass(frozen=True)
class StackConfig:
    nodes: tuple[Node, ...]
    ssh: SshSettings
    kubernetes: KubernetesSettings
    has_secret_private_key: bool = False
    serving: ServingConfig = ServingConfig()
    # Problems that do not stop a run; the program logs them, the tools print them.
    warnings: tuple[str, ...] = ()
    storage: StorageConfig = StorageConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    access: AccessConfig = AccessConfig()
    gpu: GpuConfig = GpuConfig()
    backup: BackupConfig = BackupConfig()
    upgrade: UpgradeConfig = UpgradeConfig()

    @property
    def control_plane(self) -> Node:
        """The first control plane: kubeadm init runs there, the others join it."""
        return next(n for n in self.nodes if n.is_control_plane)

    @property
    def control_planes(self) -> tuple[Node, ...]:
        """Every control plane, in stack order: the first initialises, the others
        join one at a time in this order."""
        return tuple(n for n in self.nodes if n.is_control_plane)

    @property
    def workers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if not n.is_control_plane)


# ---------------------------------------------------------------- helpers

def _host_key(problems: Problems, key: str, value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not _HOST_KEY.match(value.strip()):
        problems.add(key, value, "not an OpenSSH public host key.",
                     "give '<type> <base64>' as `scripts/preflight.py --trust` records it, "
                     "e.g. 'ssh-ed25519 AAAAC3...', or remove the key to skip pinning.")
        return None
    return value.strip()


def _network(problems: Problems, key: str, value: Any, default: str):
    text = default if value is None else value
    try:
        return ipaddress.ip_network(text, strict=True) if isinstance(text, str) else None
    except ValueError:
        pass
    try:
        suggestion = f"did you mean {ipaddress.ip_network(text, strict=False)}?"
    except (ValueError, TypeError):
        suggestion = f"write it as address/prefix, e.g. {default}."
    problems.add(key, value, "not a valid CIDR (network address with no host bits set).",
                 suggestion)
    return None


def _split_endpoint(text: str) -> Optional[tuple[str, Optional[int]]]:
    """'host', 'host:port', '[v6]:port' or a bare IPv6 address -> (host, port)."""
    if is_ip(text):
        return text, None
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?|([^:\[\]]+)(?::(\d{1,5}))?", text)
    if not match:
        return None
    host = match.group(1) or match.group(3)
    port = match.group(2) or match.group(4)
    if not is_host(host) or (port and not 1 <= int(port) <= 65535):
        return None
    return host, int(port) if port else None


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------- sections

def _parse_ssh(problems: Problems, raw: Any, has_secret_key: bool,
               path_exists: Callable[[str], bool]) -> SshSettings:
    ssh = check_mapping(problems, "ssh", raw, "see the README's `ssh` section.")
    problems.unknown_keys("ssh", ssh, SSH_KEYS)
    user = check_text(problems, "ssh.user", ssh.get("user"), DEFAULT_SSH_USER,
                 "give the login user that has passwordless sudo, e.g. ubuntu.")
    port = check_port(problems, "ssh.port", ssh.get("port"), DEFAULT_SSH_PORT)
    key_path = ssh.get("privateKeyPath")
    if key_path is not None:
        if not isinstance(key_path, str) or not key_path.strip():
            problems.add("ssh.privateKeyPath", key_path, "must be a file path.",
                         "give the path of the private key file, e.g. ~/.ssh/id_ed25519.")
            key_path = None
        elif not path_exists(os.path.expanduser(key_path)):
            problems.add("ssh.privateKeyPath", key_path, "no such file on this machine.",
                         "give the path of an existing private key file, or use "
                         f"`pulumi config set {SECRET_PRIVATE_KEY} --secret -- < KEYFILE`.")
    use_agent = check_bool(problems, "ssh.useAgent", ssh.get("useAgent"), False,
                           "write useAgent: true to use the SSH agent (SSH_AUTH_SOCK).")
    sources = [name for name, on in (
        (f"the secret {SECRET_PRIVATE_KEY}", has_secret_key),
        ("ssh.privateKeyPath", "privateKeyPath" in ssh),
        ("ssh.useAgent", use_agent),
    ) if on]
    if not sources:
        problems.add(SECRET_PRIVATE_KEY, None, "no SSH credentials are configured.",
                     f"run `pulumi config set {SECRET_PRIVATE_KEY} --secret -- < ~/.ssh/id_ed25519` (scripts/up.sh does it when SSH_KEY_FILE is set), "
                     "or set ssh.privateKeyPath, or set ssh.useAgent: true.")
    elif len(sources) > 1:
        problems.add("ssh", ssh, f"several SSH credentials are configured ({', '.join(sources)}).",
                     "keep exactly one of them, so it is clear which key is used.")
    bastion = None
    if ssh.get("bastion") is not None:
        raw_b = check_mapping(problems, "ssh.bastion", ssh["bastion"],
                         "give {address, port, user, hostKey} of the jump host.")
        problems.unknown_keys("ssh.bastion", raw_b, BASTION_KEYS)
        if raw_b:
            address = raw_b.get("address")
            if address is None:
                problems.required("ssh.bastion.address",
                                  "give the jump host's address, e.g. 203.0.113.10.")
            elif not is_host(address):
                problems.add("ssh.bastion.address", address, "not an IP address or host name.",
                             "give the jump host's address, e.g. 203.0.113.10.")
            bastion = Bastion(
                address=address if isinstance(address, str) else "",
                port=check_port(problems, "ssh.bastion.port", raw_b.get("port"), DEFAULT_SSH_PORT),
                user=check_text(problems, "ssh.bastion.user", raw_b.get("user"), user,
                           "give the login user on the jump host."),
                host_key=_host_key(problems, "ssh.bastion.hostKey", raw_b.get("hostKey")),
            )
    return SshSettings(user=user, port=port,
                       private_key_path=key_path if isinstance(key_path, str) else None,
                       use_agent=use_agent, bastion=bastion)


def _parse_nodes(problems: Problems, raw: Any, ssh: SshSettings) -> list[Node]:
    if raw is None or raw == []:
        problems.add("nodes", raw, "no nodes are configured.",
                     "list the machines, e.g. [{name: cp1, address: 10.0.2.21, role: control-plane}].")
        return []
    if not isinstance(raw, list):
        problems.add("nodes", raw, "must be a list of nodes.",
                     "write nodes as a YAML list of {name, address, role}.")
        return []
    nodes: list[tuple[int, Node]] = []
    labels: dict[int, str] = {}
    for i, item in enumerate(raw):
        key = labels[i] = item_key("nodes", i, item)
        if not isinstance(item, dict):
            problems.add(key, item, "must be an object.", "give {name, address, role}.")
            continue
        problems.unknown_keys(key, item, NODE_KEYS)
        name, address, role = item.get("name"), item.get("address"), item.get("role")
        if name is None:
            problems.required(f"{key}.name", "give the node's Kubernetes name, e.g. 'worker-1'.")
        elif not isinstance(name, str) or not DNS1123_LABEL.match(name):
            problems.add(f"{key}.name", name, f"not a valid node name ({DNS1123_RULE}).",
                         "rename it, e.g. 'worker-1'.")
        if address is None:
            problems.required(f"{key}.address",
                              "give the node's IPv4 or IPv6 address, e.g. 10.0.2.22.")
        elif not is_ip(address):
            problems.add(f"{key}.address", address, "not a valid IP address.",
                         "give the node's IPv4 or IPv6 address, e.g. 10.0.2.22.")
        if role is None:
            problems.required(f"{key}.role", f"give role: {CONTROL_PLANE} or role: {WORKER}.")
        elif role not in ROLES:
            guess = close_match(role, ROLES)
            problems.add(f"{key}.role", role,
                         "unknown role" + (f"; did you mean {guess!r}?" if guess else "."),
                         f"use {CONTROL_PLANE} or {WORKER}.")
        node_ssh = check_mapping(problems, f"{key}.ssh", item.get("ssh"),
                            "give per-node overrides {user, port}.")
        problems.unknown_keys(f"{key}.ssh", node_ssh, NODE_SSH_KEYS)
        nodes.append((i, Node(
            name=name if isinstance(name, str) else "",
            address=address if isinstance(address, str) else "",
            role=role if role in ROLES else WORKER,
            ssh_user=check_text(problems, f"{key}.ssh.user", node_ssh.get("user"), ssh.user,
                           "give the login user for this node."),
            ssh_port=check_port(problems, f"{key}.ssh.port", node_ssh.get("port"), ssh.port),
            host_key=_host_key(problems, f"{key}.hostKey", item.get("hostKey")),
            gpu=parse_node_gpu(problems, f"{key}.gpu", item.get("gpu")),
        )))
    for attr, label in (("name", "name"), ("address", "address")):
        seen: dict[str, int] = {}
        for i, node in nodes:
            value = getattr(node, attr)
            if not value:
                continue
            if value in seen:
                problems.add(f"{labels[i]}.{label}", value,
                             f"duplicates {labels[seen[value]]}.{label}.",
                             f"give every node its own {label}.")
            else:
                seen[value] = i
    return [node for _, node in nodes]


def _endpoint(problems: Problems, value: Any, nodes: list[Node],
              ha: Optional[HighAvailability]) -> str:
    """host:port of the API server for every client; behind a virtual IP, the
    virtual IP and haproxy's port, or a name given for it on that port."""
    if value is not None:
        parts = _split_endpoint(value) if isinstance(value, str) else None
        if parts and ha is not None and parts[1] not in (None, ha.port):
            problems.add("kubernetes.controlPlaneEndpoint", value,
                         f"its port is not haproxy's port on the virtual IP ({ha.port}).",
                         f"write {_join_host_port(parts[0], ha.port)}, or remove the key to use "
                         f"{ha.endpoint}.")
        elif parts:
            default_port = ha.port if ha is not None else API_SERVER_PORT
            return _join_host_port(parts[0], parts[1] or default_port)
        else:
            problems.add("kubernetes.controlPlaneEndpoint", value, "not a host or host:port.",
                         "give the address clients use for the API server, e.g. 10.0.2.21:6443, "
                         "or remove it to use the control plane's address.")
    if ha is not None:
        return ha.endpoint
    cp = next((n for n in nodes if n.is_control_plane and n.address), None)
    return _join_host_port(cp.address, API_SERVER_PORT) if cp else ""


def _parse_kubernetes(problems: Problems, raw: Any, nodes: list[Node]) -> KubernetesSettings:
    k8s = check_mapping(problems, "kubernetes", raw, "see the README's `kubernetes` section.")
    problems.unknown_keys("kubernetes", k8s, KUBERNETES_KEYS)
    version = k8s.get("version", versions.KUBERNETES_VERSION)
    text = version.lstrip("v") if isinstance(version, str) else ""
    try:
        versions.train_for(text)  # the minor picks the release train
    except ValueError as error:
        problems.add("kubernetes.version", version, f"{error}.",
                     "give a full patch release of one of those minors, e.g. "
                     f"{versions.KUBERNETES_VERSION} (the default, used when the key is absent) "
                     f"or {versions.TRAINS[list(versions.TRAINS)[-1]].kubernetes_version}.")
        text = versions.KUBERNETES_VERSION
    pod = _network(problems, "kubernetes.podCidr", k8s.get("podCidr"), DEFAULT_POD_CIDR)
    svc = _network(problems, "kubernetes.serviceCidr", k8s.get("serviceCidr"),
                   DEFAULT_SERVICE_CIDR)
    if pod is not None and svc is not None and pod.version == svc.version and pod.overlaps(svc):
        problems.add("kubernetes.podCidr", str(pod),
                     f"overlaps kubernetes.serviceCidr {svc}.",
                     "choose two ranges that do not overlap, e.g. 192.168.0.0/16 and 10.96.0.0/12.")
    for net, key in ((pod, "kubernetes.podCidr"), (svc, "kubernetes.serviceCidr")):
        if net is None:
            continue
        inside = [n.name for n in nodes if is_ip(n.address)
                  and ipaddress.ip_address(n.address) in net]
        if inside:
            problems.add(key, str(net),
                         f"contains the address of node(s) {', '.join(inside)}; "
                         "pod and service traffic would be routed away from the nodes.",
                         "choose a range that none of the node addresses fall into.")
    control_planes = [n for n in nodes if n.is_control_plane]
    ha = parse_high_availability(problems, k8s.get("highAvailability"),
                                 [(n.name, n.address) for n in control_planes],
                                 [(n.name, n.address) for n in nodes])
    if nodes:  # no nodes at all is reported once, at `nodes`
        check_control_plane_count(problems, [n.name or n.address for n in control_planes], ha,
                                  ha_given=k8s.get("highAvailability") is not None)
    endpoint = _endpoint(problems, k8s.get("controlPlaneEndpoint"), nodes, ha)
    return KubernetesSettings(
        version=text,
        pod_cidr=str(pod) if pod else DEFAULT_POD_CIDR,
        service_cidr=str(svc) if svc else DEFAULT_SERVICE_CIDR,
        control_plane_endpoint=endpoint,
        certificates=parse_certificate_settings(problems, k8s),
        high_availability=ha,
    )


# Config namespaces a stack file may use besides this project's: the providers the
# program creates resources with, and Pulumi's own settings.
OTHER_NAMESPACES = ("kubernetes", "command", "pulumi")
PROJECT_KEYS = {"nodes", "ssh", "kubernetes", SECRET_PRIVATE_KEY, "serving", "runtimes", "models",
                "storage", "modelStores", "storageSecrets", "monitoring", GRAFANA_PASSWORD_KEY,
                "projects", "access", "gpu", "backup", "upgrade"}


def split_namespaces(problems: Problems, full: dict[str, Any]) -> dict[str, Any]:
    """The project's keys without their `kserve-cluster:` prefix.

    A key in a namespace that neither this project nor a provider it uses reads
    would be silently ignored by Pulumi: it is a problem, with the close match.
    """
    raw: dict[str, Any] = {}
    for full_key, value in full.items():
        namespace, colon, key = str(full_key).partition(":")
        if colon and namespace == PROJECT:
            raw[key] = value
        elif not colon:
            guess = close_match(full_key, PROJECT_KEYS)
            problems.add_as_written(full_key, value, "a config key without a namespace.",
                         f"write it as '{PROJECT}:{guess or full_key}'.")
        elif namespace not in OTHER_NAMESPACES:
            guess = close_match(namespace, (PROJECT, *OTHER_NAMESPACES))
            problems.add_as_written(full_key, value,
                         f"unknown config namespace {namespace!r}"
                         + (f"; did you mean {guess!r}?" if guess else "")
                         + " Nothing reads it, so it would be ignored.",
                         f"write it as '{guess or PROJECT}:{key}'." if guess else
                         f"use the project's namespace ({PROJECT}:{key}) or remove it.")
    return raw


def _parse(problems: Problems, raw: dict[str, Any], has_secret_private_key: bool,
           path_exists: Callable[[str], bool],
           secret_keys: frozenset[str] = frozenset()) -> StackConfig:
    """`secret_keys`: the project's top-level keys (no prefix) that hold a secret
    (set with `pulumi config set --secret`, also `--path`): the parsers of keys
    that must carry secrets check it."""
    problems.unknown_keys("", raw, PROJECT_KEYS)
    ssh = _parse_ssh(problems, raw.get("ssh"), has_secret_private_key, path_exists)
    nodes = _parse_nodes(problems, raw.get("nodes"), ssh)
    kubernetes = _parse_kubernetes(problems, raw.get("kubernetes"), nodes)
    # One owner per namespace: what the layers create is refused to every section.
    reserved = ReservedNamespaces(monitoring=monitoring_requested(raw.get("monitoring")))
    serving = parse_serving_config(problems, raw.get("serving"), raw.get("runtimes"),
                                   raw.get("models"), reserved, secret_keys)
    storage = parse_storage_config(problems, raw.get("storage"), raw.get("modelStores"),
                                   raw.get("storageSecrets"), secret_keys, reserved)
    serving = check_storage_references(problems, serving, storage)
    serving = dataclasses.replace(serving, train=kubernetes.train)
    monitoring = parse_monitoring(problems, raw.get("monitoring"), raw.get(GRAFANA_PASSWORD_KEY),
                                  secret_keys, serving)
    access = parse_access_config(problems, raw.get("projects"), raw.get("access"), serving,
                                 reserved=reserved)
    raw_models = raw.get("models")
    gpu = parse_gpu_config(problems, raw.get("gpu"), nodes, serving.models, [
        f"{item_key('models', i, item)}.resources.gpu"
        for i, item in enumerate(raw_models if isinstance(raw_models, list) else [])
        if isinstance(item, dict)])
    backup = parse_backup_config(problems, raw.get("backup"))
    upgrade = parse_upgrade_config(problems, raw.get("upgrade"),
                                   sum(1 for n in nodes if not n.is_control_plane))
    problems.raise_if_any()
    return StackConfig(nodes=tuple(nodes), ssh=ssh, kubernetes=kubernetes,
                       has_secret_private_key=has_secret_private_key, serving=serving,
                       warnings=tuple(problems.warnings), storage=storage, monitoring=monitoring,
                       access=access, gpu=gpu, backup=backup, upgrade=upgrade)


def parse_stack_config(raw: dict[str, Any], has_secret_private_key: bool = False,
                       path_exists: Callable[[str], bool] = os.path.isfile,
                       secret_keys: frozenset[str] = frozenset()) -> StackConfig:
    """Validate the project's keys (no prefix); raise ConfigError with every problem."""
    return _parse(Problems(), raw, has_secret_private_key, path_exists, frozenset(secret_keys))


def parse_namespaced_config(full: dict[str, Any], has_secret_private_key: bool = False,
                            path_exists: Callable[[str], bool] = os.path.isfile,
                            secret_keys: frozenset[str] = frozenset()) -> StackConfig:
    """Validate a whole stack config (`namespace:key` keys, values decoded), every
    namespace included; raise ConfigError with every problem. `secret_keys` are
    full keys (`kserve-cluster:storageSecrets`)."""
    problems = Problems()
    prefix = f"{PROJECT}:"
    own = frozenset(k[len(prefix):] for k in secret_keys if k.startswith(prefix))
    return _parse(problems, split_namespaces(problems, full), has_secret_private_key, path_exists,
                  own)


def config_key_tree() -> tuple[set[str], dict[str, Any]]:
    """The stack config's keys as a tree of the key sets the parsers check:
    (keys, {child: subtree}); a child named `key[]` is a list of objects."""
    from components.access import config as access
    from components.backup.config import BACKUP_KEYS, BACKUP_NFS_KEYS
    from components.cluster.high_availability import KEYS as HA_KEYS
    from components.gpu.config import GPU_KEYS
    from components.monitoring.config import MONITORING_KEYS
    from components.serving import config as serving
    from components.serving.scaling import SCALING_KEYS
    from components.storage import config as storage
    from components.upgrade.config import UPGRADE_KEYS
    return PROJECT_KEYS, {
        "nodes[]": (NODE_KEYS, {"ssh": (NODE_SSH_KEYS, {})}),
        "ssh": (SSH_KEYS, {"bastion": (BASTION_KEYS, {})}),
        "kubernetes": (KUBERNETES_KEYS, {"highAvailability": (HA_KEYS, {})}),
        "serving": (serving.SERVING_KEYS, {"tls": (serving.TLS_KEYS, {})}),
        "runtimes[]": (serving.RUNTIME_KEYS, {"modelFormats[]": (serving.FORMAT_KEYS, {})}),
        "models[]": (serving.MODEL_KEYS, {"resources": (serving.RESOURCE_KEYS, {}),
                                          "canary": (serving.CANARY_KEYS, {}),
                                          "scaling": (SCALING_KEYS, {})}),
        "storage": (storage.STORAGE_KEYS, {"nfs": (storage.NFS_KEYS, {})}),
        "modelStores[]": (storage.STORE_KEYS, {"upload[]": (storage.UPLOAD_KEYS, {})}),
        "storageSecrets[]": (storage.SECRET_KEYS, {}),
        "monitoring": (MONITORING_KEYS, {}),
        "projects[]": (access.PROJECT_KEYS, {"quota": (access.QUOTA_KEYS, {}),
                                             "tokens[]": (access.TOKEN_KEYS, {})}),
        "access": (access.ACCESS_KEYS, {}),
        "gpu": (GPU_KEYS, {}),
        "backup": (BACKUP_KEYS, {"nfs": (BACKUP_NFS_KEYS, {})}),
        "upgrade": (UPGRADE_KEYS, {}),
    }


def config_key_paths() -> frozenset[str]:
    """Every key path a stack file may hold under `kserve-cluster:`, written as
    docs/config.md writes them: `ssh.bastion.port`, `models[].scaling.metric`
    (`[]`: each item of a list). Objects and lists are paths too (`models[].scaling`)."""
    def walk(prefix: str, keys: set[str], children: dict[str, Any]):
        for key in keys:
            yield prefix + key
        for child, (sub_keys, sub_children) in children.items():
            if child.removesuffix("[]") not in keys:
                raise ValueError(f"config_key_tree: {prefix}{child} is not a key the parser reads")
            yield from walk(f"{prefix}{child}.", sub_keys, sub_children)
    return frozenset(walk("", *config_key_tree()))
