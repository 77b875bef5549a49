"""The offline plan of a stack: what `pulumi up` would create, layer by layer.

`plan_stack(stack)` evaluates __main__.py for stacks/Pulumi.STACK.yaml under
Pulumi's mock runtime (components/offline/program.py): no Pulumi CLI, engine,
backend, SSH key or cluster is needed, and no remote command runs. The plan
groups every resource by the component (layer) that owns it, says which script
runs on which node, which Helm charts and manifests are installed at which
version, and which models and serving runtimes are deployed; resource types it
has no special wording for are still listed. Durations behind the critical path
are estimates.
"""
from __future__ import annotations

import datetime
import shlex
from dataclasses import dataclass, field
from typing import Any, Optional

from components import versions
from components.offline.graph import Graph
from components.offline.program import Evaluation, Registration, evaluate
from components.plan import outputs as team
from components.config_secrets import holds_encrypted
from components.monitoring.config import GRAFANA_PASSWORD_KEY
from components.problems import PROJECT, ConfigError, Problems
from components.stack_config import split_namespaces
from components.stack_file import parse_file_values, read_stack_file, stack_file
from components.storage import files
from components.upgrade.report import offline_upgrade

# Stands in for the SSH key so the program can be evaluated; it is never used to connect.
PLACEHOLDER_PRIVATE_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
                           "cGxhY2Vob2xkZXIta2V5LW5vdC1hLXJlYWwta2V5\n"
                           "-----END OPENSSH PRIVATE KEY-----\n")

# Stands in for an unset grafanaAdminPassword, in the shape `pulumi config set --secret`
# leaves in a stack file, so the program reads it as a secret it never shows.
GRAFANA_PLACEHOLDER = {"secure": "v1:plan-placeholder-not-a-password"}
GRAFANA_PLACEHOLDER_NOTE = (
    f"{GRAFANA_PASSWORD_KEY} is not set: the plan uses a placeholder for it. `pulumi up` "
    f"refuses this stack until you run `pulumi config set --secret {GRAFANA_PASSWORD_KEY}`.")

NOT_RUN_NOTE = ("Offline plan: evaluated under Pulumi's mock runtime with a placeholder SSH key. "
                "No remote command was run and no backend or cluster was contacted; "
                "command outputs (join lines, kubeconfig) are made up.")

COMPONENT_PREFIX = f"{PROJECT}:"
REMOTE_COMMAND = "command:remote:Command"
COPY_TO_REMOTE = "command:remote:CopyToRemote"
LOCAL_COMMAND = "command:local:Command"
UPLOAD_SCRIPT = "upload-to-claim.sh"
HELM_RELEASE_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
MANIFEST_TYPES = ("kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml/v2:ConfigGroup",
                  "kubernetes:yaml:ConfigFile", "kubernetes:yaml:ConfigGroup")
KSERVE_GROUP = "serving.kserve.io"
MODEL_KINDS = ("InferenceService",)
RUNTIME_KINDS = ("ServingRuntime", "ClusterServingRuntime")

# Rough durations in seconds, for the critical path only. These are ESTIMATES
# for a lab of small VMs on a good link (package and image downloads dominate),
# not measurements: the plan never runs anything.
SCRIPT_ESTIMATES = {
    "preflight-facts.sh": 10,      # read-only checks, a few 5 s URL probes
    "prepare.sh": 480,             # apt repos, containerd, kubelet/kubeadm, image pre-pull
    "init-control-plane.sh": 180,  # kubeadm init, control-plane pods Ready
    "read-kubeconfig.sh": 5,
    "etcd-backup-install.sh": 20,  # etcd release tarball, systemd timer
    "join-token.sh": 5,
    "join-worker.sh": 90,
    "node-membership.sh": 10,
    "wait-nodes-ready.sh": 120,    # Calico up on every node
    "wait-endpoints.sh": 60,       # a webhook Service gets ready endpoints
    "smoke-predict.sh": 30,        # one prediction through the ingress
    UPLOAD_SCRIPT: 60,             # a helper pod (image pull on first use), files into a claim
    "issue-member-kubeconfig.sh": 5,  # kubeadm kubeconfig user
    "gpu-driver.sh": 600,          # the driver branch and its DKMS build
    "gpu-toolkit.sh": 60,          # NVIDIA's apt repository, four packages
    "gpu-runtime.sh": 15,          # nvidia-ctk, containerd restart
    "cert-renewal.sh": 5,          # a program, a unit and its timer; systemctl enable
    # Upgrade steps: on a build or an ordinary `up` each finds its node at the target
    # and returns at once; a real upgrade takes longer (docs/upgrades.md).
    "upgrade-versions.sh": 5,      # kubectl get nodes, read-only
    "upgrade-gates.sh": 5,
    "calico-crds.sh": 15,          # the Calico version's CRD manifest, applied server-side
    "upgrade-node.sh": 5,
}
CERT_RENEWAL_SCRIPT = "cert-renewal.sh"
# The plan contacts no node, so it cannot read a certificate; preflight can.
CERT_EXPIRY_NOTE = ("each control plane's earliest certificate expiry is read live by "
                    "`scripts/preflight.py` (kubeadm certs check-expiration)")
# CopyToRemote: a few seconds to connect, then the file at a lab link's speed (ESTIMATE).
COPY_SECONDS = 3
COPY_BYTES_PER_SECOND = 20_000_000
TYPE_ESTIMATES = {
    "kubernetes:helm.sh/v3:Release": 120,
    "kubernetes:helm.sh/v4:Chart": 120,
    "kubernetes:yaml/v2:ConfigFile": 60,
    "kubernetes:yaml/v2:ConfigGroup": 60,
    f"kubernetes:{KSERVE_GROUP}/v1beta1:InferenceService": 300,  # model download, image pull
}
UNKNOWN_SCRIPT_ESTIMATE = 60
KUBERNETES_OBJECT_ESTIMATE = 5
OTHER_ESTIMATE = 10


@dataclass
class Step:
    """One resource the engine would create (anything but a component)."""
    urn: str
    name: str
    type: str
    kind: str                      # command, upload, chart, manifest, model, runtime, kubernetes, provider, other
    summary: str                   # one line: what it is, in the plan's words
    layer: str = ""                # outermost project component, "<layer>:<Type> <name>"
    group: str = ""                # innermost project component, "<layer>:<Type> <name>"
    group_type: str = ""           # its type token without the project prefix
    node: Optional[str] = None     # where a remote command runs
    host: Optional[str] = None
    script: Optional[str] = None
    estimate: int = 0
    deps: set[str] = field(default_factory=set)
    start: int = 0                 # earliest start with unlimited parallelism (estimate)
    rank: int = 0                  # longest chain of steps before this one
    critical: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def finish(self) -> int:
        return self.start + self.estimate


@dataclass
class Plan:
    stack: str
    nodes: list[dict[str, Any]]
    steps: dict[str, Step]
    critical_path: list[str]       # step URNs, first to last
    notes: list[str]
    # What users get (components/plan/outputs.py): no secret value in any of them.
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    grafana_url: Optional[str] = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    # A raised kubernetes.version (components/upgrade/report.py): {} when not asked.
    upgrade: dict[str, Any] = field(default_factory=dict)

    @property
    def total_estimate(self) -> int:
        return max((s.finish for s in self.steps.values()), default=0)

    def ordered(self) -> list[Step]:
        return sorted(self.steps.values(), key=lambda s: (s.start, s.rank, s.name, s.type))

    def layers(self) -> list[tuple[str, list[tuple[str, list[Step]]]]]:
        """[(layer, [(group, [steps])])], each in the order it would start."""
        layers: dict[str, dict[str, list[Step]]] = {}
        for step in self.ordered():
            layers.setdefault(step.layer, {}).setdefault(step.group, []).append(step)
        # A group comes after the groups whose work it waits for: order by its last start.
        return [(layer, sorted(groups.items(), key=lambda item: (max(s.start for s in item[1]),
                                                                   item[0])))
                for layer, groups in layers.items()]


# --- reading registrations ----------------------------------------------------

def _short_type(type_token: str) -> str:
    return type_token.removeprefix(COMPONENT_PREFIX)


def _label(registration: Registration) -> str:
    return f"{_short_type(registration.type)} {registration.name}"


def script_name(create: Any) -> Optional[str]:
    """node_scripts.render_command ends the command line with the script's name."""
    if not isinstance(create, str) or not create.strip():
        return None
    last = create.rstrip().rsplit(None, 1)[-1].strip("'\"")
    return last if "." in last and "/" not in last and len(last) < 80 else None


def _metadata(inputs: dict) -> dict:
    metadata = inputs.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _object_name(registration: Registration) -> str:
    metadata = _metadata(registration.inputs)
    name = metadata.get("name") if isinstance(metadata.get("name"), str) else registration.name
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name


def _api_and_kind(registration: Registration) -> tuple[str, str]:
    """From the type token kubernetes:<group>/<version>:<Kind> (Kind keeps a "Patch" suffix)."""
    _, _, rest = registration.type.partition(":")
    api, _, kind = rest.rpartition(":")
    api = api.removeprefix("core/")
    if isinstance(registration.inputs.get("apiVersion"), str):
        api = registration.inputs["apiVersion"]
    return api, kind


def _text(value: Any, default: str = "?") -> str:
    return value if isinstance(value, (str, int, float)) and value != "" else default


def _describe_model(registration: Registration) -> dict[str, Any]:
    spec = registration.inputs.get("spec") if isinstance(registration.inputs.get("spec"), dict) else {}
    predictor = spec.get("predictor") if isinstance(spec.get("predictor"), dict) else {}
    model = predictor.get("model") if isinstance(predictor.get("model"), dict) else {}
    model_format = model.get("modelFormat") if isinstance(model.get("modelFormat"), dict) else {}
    return {
        "name": _object_name(registration),
        "format": model_format.get("name"),
        "storageUri": model.get("storageUri"),
        "runtime": model.get("runtime"),
        "canaryTrafficPercent": predictor.get("canaryTrafficPercent"),
    }


def _describe_runtime(registration: Registration) -> dict[str, Any]:
    spec = registration.inputs.get("spec") if isinstance(registration.inputs.get("spec"), dict) else {}
    formats = [f"{f.get('name')}" + (f":{f['version']}" if f.get("version") else "")
               for f in spec.get("supportedModelFormats") or [] if isinstance(f, dict)]
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    return {"name": _object_name(registration), "formats": formats,
            "image": containers[0].get("image") if containers else None}


def script_env(command: Any) -> dict[str, str]:
    """The `NAME=value` inputs node_scripts.render_command puts before `bash -c`."""
    if not isinstance(command, str):
        return {}
    try:
        words = shlex.split(command)
    except ValueError:
        return {}
    if "env" not in words or "bash" not in words:
        return {}
    inputs = words[words.index("env") + 1:words.index("bash")]
    return dict(word.split("=", 1) for word in inputs if "=" in word)


# What happens to the files of model stores, in the plan's words.
UPLOAD_DATA = ("removing this upload entry deletes {target} from the claim (and the staged "
               "copy on the control plane); pulumi destroy skips it, the cluster goes as a whole")
CLAIM_DATA = {
    "local-path": ("removing the store deletes the claim and its files (reclaim Delete: the "
                   "directory on the node goes); pulumi destroy: the nodes' reset removes "
                   "/opt/local-path-provisioner"),
    "nfs-client": ("removing the store deletes the claim; the provisioner renames its directory "
                   "on the NFS server to archived-...; pulumi destroy leaves the directories on "
                   "the server"),
}
OTHER_CLASS_DATA = ("removing the store deletes the claim: what happens to its files is up to "
                    "the class's reclaim policy")


def _describe_upload_copy(step: Step, inputs: dict, node_by_address: dict[str, str]) -> None:
    connection = inputs.get("connection") if isinstance(inputs.get("connection"), dict) else {}
    host = connection.get("host") if isinstance(connection.get("host"), str) else None
    source = inputs.get("source")
    path = getattr(source, "path", None) or (source.get("path") if isinstance(source, dict) else None)
    size = None
    if isinstance(path, str):
        try:
            size = files.resolve(path).stat().st_size
        except OSError:
            size = None
    step.kind, step.host = "upload", host
    step.node = node_by_address.get(host or "", host)
    step.details = {"source": path, "remotePath": inputs.get("remotePath"), "bytes": size}
    step.summary = (f"copies {_text(path)} ({_text(size, '?')} bytes) to {step.node or '?'}:"
                    f"~/{_text(inputs.get('remotePath'))} (staging; sent again only when its "
                    "content changes)")


def describe(registration: Registration, node_by_address: dict[str, str]) -> Step:
    """What one resource is, in words a reviewer reads. Unknown types still get a line."""
    inputs = registration.inputs
    step = Step(urn=registration.urn, name=registration.name, type=registration.type,
                kind="other", summary=registration.type)
    if registration.type == LOCAL_COMMAND and not inputs.get("create"):
        # A worker's reset (components/cluster/leave.py): it runs only on delete.
        step.summary = (f"on this machine, only when removed: {_text(inputs.get('delete'))} "
                        "(resets the worker, or warns when it does not answer)")
    if registration.type == REMOTE_COMMAND:
        connection = inputs.get("connection") if isinstance(inputs.get("connection"), dict) else {}
        host = connection.get("host") if isinstance(connection.get("host"), str) else None
        step.kind, step.host = "command", host
        step.node = node_by_address.get(host or "", host)
        step.script = script_name(inputs.get("create")) or "inline command"
        step.summary = f"runs {step.script} on {step.node or 'an unknown host'}" + (
            f" ({host})" if host and host != step.node else "")
        if step.script == UPLOAD_SCRIPT:
            env = script_env(inputs.get("create"))
            target = env.get("TARGET", "?")
            step.details["data"] = UPLOAD_DATA.format(target=target)
            step.summary += (f": fills claim {env.get('NAMESPACE', '?')}/{env.get('CLAIM', '?')} at "
                             f"{target} through a short-lived pod; {step.details['data']}")
        elif step.script == CERT_RENEWAL_SCRIPT:
            days = script_env(inputs.get("create")).get("RENEW_BEFORE_DAYS", "?")
            step.details["renewBeforeDays"] = days
            step.summary += (f": a timer that renews the control plane's certificates when fewer "
                             f"than {days} days are left; {CERT_EXPIRY_NOTE}")
        if isinstance(inputs.get("delete"), str) and step.script != UPLOAD_SCRIPT:
            step.details["onDestroy"] = script_name(inputs["delete"]) or "inline command"
            step.summary += f"; on destroy {step.details['onDestroy']}"
    elif registration.type == COPY_TO_REMOTE:
        _describe_upload_copy(step, inputs, node_by_address)
    elif registration.type in HELM_RELEASE_TYPES:
        repo = (inputs.get("repositoryOpts") or {}).get("repo") if isinstance(
            inputs.get("repositoryOpts"), dict) else None
        step.kind = "chart"
        step.details = {"chart": inputs.get("chart"), "version": inputs.get("version"),
                        "repo": repo or inputs.get("repo"), "namespace": inputs.get("namespace"),
                        "release": inputs.get("name") or registration.name}
        chart = _text(step.details["chart"])
        # An OCI or URL chart reference names its own source; a bare name needs the repo.
        source = "" if "://" in chart else f" from {_text(step.details['repo'], 'a local path')}"
        step.summary = (f"Helm chart {chart} {_text(step.details['version'], 'unpinned')}{source}"
                        f" into namespace {_text(step.details['namespace'], 'default')}")
    elif registration.type in MANIFEST_TYPES:
        files = inputs.get("files") if isinstance(inputs.get("files"), list) else []
        if isinstance(inputs.get("file"), str):
            files = [inputs["file"]] + files
        step.kind = "manifest"
        step.details = {"files": [f for f in files if isinstance(f, str)],
                        "inlineYaml": bool(inputs.get("yaml") or inputs.get("objs"))}
        sources = ", ".join(step.details["files"]) or "inline YAML"
        step.summary = f"manifest {sources}"
    elif registration.type == "tls:index/privateKey:PrivateKey":
        bits = inputs.get("rsaBits")
        bits = int(bits) if isinstance(bits, float) and bits.is_integer() else bits
        step.summary = (f"{_text(inputs.get('algorithm'), 'RSA')} private key "
                        f"({_text(bits, 'default')} bits), kept encrypted in the state")
    elif registration.type.startswith("pulumi:providers:"):
        step.kind = "provider"
        step.summary = f"{registration.type.rsplit(':', 1)[-1]} provider"
    elif registration.type.startswith("kubernetes:"):
        api, kind = _api_and_kind(registration)
        step.details = {"apiVersion": api, "kind": kind, "name": _object_name(registration)}
        if api.startswith(f"{KSERVE_GROUP}/") and kind.removesuffix("Patch") in MODEL_KINDS:
            step.kind = "model"
            step.details.update(_describe_model(registration))
            model = step.details
            patch = "patch of " if kind.endswith("Patch") else ""
            step.summary = (f"{patch}model {model['name']}: {_text(model['format'])} from "
                            f"{_text(model['storageUri'])}"
                            + (f", runtime {model['runtime']}" if model.get("runtime") else "")
                            + (f", canary {model['canaryTrafficPercent']}%"
                               if model.get("canaryTrafficPercent") is not None else ""))
        elif api.startswith(f"{KSERVE_GROUP}/") and kind in RUNTIME_KINDS:
            step.kind = "runtime"
            step.details.update(_describe_runtime(registration))
            step.summary = (f"{kind} {step.details['name']}: "
                            f"{', '.join(step.details['formats']) or 'no formats'}"
                            f" with {_text(step.details['image'], 'no image')}")
        else:
            step.kind = "kubernetes"
            step.summary = f"{kind} {step.details['name']} ({api})"
            if kind == "PersistentVolumeClaim":
                spec = inputs.get("spec") if isinstance(inputs.get("spec"), dict) else {}
                requests = (spec.get("resources") or {}).get("requests") or {}
                storage_class = spec.get("storageClassName")
                step.details["data"] = CLAIM_DATA.get(storage_class, OTHER_CLASS_DATA)
                step.summary += (f": {_text(requests.get('storage'))}, class "
                                 f"{_text(storage_class, 'the cluster default')}, "
                                 f"{', '.join(spec.get('accessModes') or []) or '?'}; "
                                 f"{step.details['data']}")
    return step


def estimate_for(step: Step) -> int:
    if step.kind == "provider" or (step.type == LOCAL_COMMAND and "only when removed" in step.summary):
        return 0
    if step.kind == "command":
        return SCRIPT_ESTIMATES.get(step.script or "", UNKNOWN_SCRIPT_ESTIMATE)
    if step.kind == "upload":
        return COPY_SECONDS + (step.details.get("bytes") or 0) // COPY_BYTES_PER_SECOND
    if step.type in TYPE_ESTIMATES:
        return TYPE_ESTIMATES[step.type]
    if step.type.startswith("kubernetes:"):
        return KUBERNETES_OBJECT_ESTIMATE
    return OTHER_ESTIMATE


# --- building the plan ----------------------------------------------------------

def _is_component(registration: Registration) -> bool:
    return registration.type.startswith(COMPONENT_PREFIX) and not registration.custom


def build_plan(stack: str, config: dict[str, Any], evaluation: Evaluation,
               notes: Optional[list[str]] = None) -> Plan:
    nodes = [n for n in config.get("nodes") or [] if isinstance(n, dict)]
    node_by_address = {n.get("address"): n.get("name") for n in nodes}
    by_urn = {r.urn: r for r in evaluation.registrations}
    components = {r.urn for r in evaluation.registrations if _is_component(r)}
    steps: dict[str, Step] = {}
    for registration in evaluation.registrations:
        if registration.urn in components or registration.type == "pulumi:pulumi:Stack":
            continue
        step = describe(registration, node_by_address)
        ancestors = []  # project components, innermost first
        parent = registration.parent
        while parent in by_urn:
            if parent in components:
                ancestors.append(by_urn[parent])
            parent = by_urn[parent].parent
        if ancestors:
            step.layer, step.group = _label(ancestors[-1]), _label(ancestors[0])
            step.group_type = _short_type(ancestors[0].type)
        else:
            step.layer = step.group = step.group_type = "(stack root)"
        step.estimate = estimate_for(step)
        steps[step.urn] = step

    # A dependency on a component means: on every resource under it.
    children: dict[str, list[str]] = {}
    for registration in evaluation.registrations:
        children.setdefault(registration.parent, []).append(registration.urn)

    def expand(urn: str) -> set[str]:
        if urn in steps:
            return {urn}
        return set().union(*(expand(child) for child in children.get(urn, ())))

    graph = Graph(evaluation)
    for urn, step in steps.items():
        for dep in graph.edges.get(urn, ()):
            step.deps |= expand(dep) - {urn}

    critical = _schedule(steps)
    return Plan(stack=stack, nodes=nodes, steps=steps, critical_path=critical,
                notes=list(notes or []), endpoints=team.endpoints(evaluation),
                grafana_url=team.grafana_url(evaluation),
                outputs=team.exported(evaluation.outputs))


def _schedule(steps: dict[str, Step]) -> list[str]:
    """Earliest starts with unlimited parallelism; returns the critical path."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(urn: str) -> None:
        # Iterative depth-first order: a 1+100 node stack must not hit the recursion limit.
        stack = [(urn, iter(sorted(steps[urn].deps)))]
        state[urn] = 1
        while stack:
            current, pending = stack[-1]
            for dep in pending:
                if state.get(dep) == 1:
                    raise ValueError(f"dependency cycle through {steps[dep].name}")
                if dep not in state:
                    state[dep] = 1
                    stack.append((dep, iter(sorted(steps[dep].deps))))
                    break
            else:
                stack.pop()
                state[current] = 2
                order.append(current)

    for urn in sorted(steps):
        if urn not in state:
            visit(urn)
    best_before: dict[str, Optional[str]] = {}
    for urn in order:
        step = steps[urn]
        deps = sorted(step.deps, key=lambda d: (-steps[d].finish, steps[d].name))
        step.start = steps[deps[0]].finish if deps else 0
        step.rank = max((steps[d].rank + 1 for d in deps), default=0)
        best_before[urn] = deps[0] if deps else None
    if not steps:
        return []
    last = max(steps.values(), key=lambda s: (s.finish, s.rank, s.name)).urn
    path = []
    current: Optional[str] = last
    while current is not None:
        path.append(current)
        steps[current].critical = True
        current = best_before[current]
    return path[::-1]


def with_grafana_placeholder(full: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The stack file's values with a placeholder for an unset Grafana password when
    the program's own validation says monitoring is on, and the note that says so.
    A plan needs no secret; `pulumi up` still refuses the stack without it."""
    key = f"{PROJECT}:{GRAFANA_PASSWORD_KEY}"
    if key in full:
        return full, []
    trial = {**full, key: GRAFANA_PLACEHOLDER}
    try:
        enabled = parse_file_values(trial, path_exists=lambda _: True).monitoring.enabled
    except ConfigError:
        enabled = False  # the stack's own problems: the parse without the placeholder reports them
    return (trial, [GRAFANA_PLACEHOLDER_NOTE]) if enabled else (full, [])


def plan_stack(stack: str, stacks_dir=None, today: Optional[datetime.date] = None,
               from_version: Optional[str] = None) -> Plan:
    """The plan of a stack file, after the same validation as the program's
    (every namespace included): a ConfigError lists every problem. Warnings
    become notes of the plan, with one when the release train's Kubernetes minor
    is past end of life on `today` (default: the date today). `from_version`: the
    version the cluster runs, for the upgrade's numbered steps (the plan reads no
    node; without it the plan says it cannot know)."""
    full, notes = with_grafana_placeholder(read_stack_file(stack_file(stack, stacks_dir)))
    config = parse_file_values(full, path_exists=lambda _: True)
    plan = plan_config(stack, split_namespaces(Problems(), full))
    end_of_life = versions.end_of_life_warning(config.kubernetes.train,
                                               today or datetime.date.today())
    plan.notes += notes + [f"warning: {w}" for w in config.warnings] + \
        ([f"warning: {end_of_life}"] if end_of_life else [])
    plan.upgrade = offline_upgrade(config, from_version)
    return plan


def plan_config(stack: str, config: dict[str, Any]) -> Plan:
    """The plan for a stack config (keys without the project prefix)."""
    config = dict(config)
    notes = [NOT_RUN_NOTE]
    # Whatever credential the stack file names, the plan uses a placeholder: a key
    # file or agent of the operator's machine must not be needed to read a plan.
    config.pop("sshPrivateKey", None)
    ssh = config.get("ssh")
    if isinstance(ssh, dict) and ({"privateKeyPath", "useAgent"} & set(ssh)):
        config["ssh"] = {k: v for k, v in ssh.items() if k not in ("privateKeyPath", "useAgent")}
        notes.append("The stack's ssh.privateKeyPath/useAgent was replaced by the placeholder key.")
    # Values set with `pulumi config set --secret` are `{secure: ...}` in the file: they
    # reach the program as secrets (never read), as under `pulumi up`.
    secrets = {key: config.pop(key) for key in list(config) if holds_encrypted(config[key])}
    evaluation = evaluate(config, preview=False, stack=stack,
                          secret_private_key=PLACEHOLDER_PRIVATE_KEY, secret_config=secrets)
    return build_plan(stack, config, evaluation, notes)
