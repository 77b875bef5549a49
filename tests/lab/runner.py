"""Run the real program against the lab: remote commands over SSH, the rest mocked.

`LabRunner.up(config)` evaluates __main__.py under Pulumi's mock runtime
(components/offline/program.evaluate) with `LabMocks`: every `command:remote:Command`
runs its `create` over SSH (paramiko) on the node its connection names, with its
`stdin`, and its real stdout/stderr become its outputs, so data flows between
nodes the way the program wires it. Every `command:remote:CopyToRemote` copies its
file over the node's real sshd with SFTP, streamed, as pulumi-command does (parent
directories made; never deleted). Every other resource type (Kubernetes,
providers, components, and whatever the program adds later) stays mocked: its
inputs are echoed back as outputs.

Between runs the runner keeps a small state, like the engine's: resource ->
inputs, outputs, dependencies. A later `up` runs a command again only when its
inputs changed (`triggers` changes replace it: create the new, then delete the
old), runs the `delete` of a resource the program no longer registers, and
`destroy()` runs every `delete` in reverse dependency order (dependents first,
independent ones in parallel), skipping a resource whose `deleted_with` target
goes too. Like `pulumi up` without --continue-on-error, a failure stops new
operations; those already running finish and are recorded.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import io
import posixpath
import socket
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import paramiko
import pulumi
from pulumi.runtime import sync_await

from components.offline import program as offline_program

COMMAND = "command:remote:Command"
COPY_TO_REMOTE = "command:remote:CopyToRemote"
# Run on this machine, as pulumi-command runs it on the operator's: `sh -c` in the
# project directory, with its stdin; scripts/*.py find the test's Python first on
# the PATH (KSERVE_CLUSTER_NO_VENV: no venv of their own).
LOCAL_COMMAND = "command:local:Command"
SECRET_SIG = offline_program.SECRET_SIG
Key = tuple[str, str]  # (type, name): unique per run for the resources this program makes


class LabRunError(Exception):
    """A run that failed; `failures` lists each failed step."""

    def __init__(self, failures: list["StepFailure"]):
        self.failures = failures
        super().__init__("\n".join(str(f) for f in failures))


@dataclass
class StepFailure:
    resource: str
    node: str
    host: str
    phase: str
    detail: str

    def __str__(self) -> str:
        return (f"{self.resource} ({self.phase}) failed on node {self.node} "
                f"({self.host}): {self.detail}")


@dataclass
class CommandRun:
    """One command executed on a node, as the transcript shows it."""
    resource: str
    node: str
    host: str
    phase: str  # create, update, delete
    exit_status: Optional[int]
    stdout: str  # "[secret]" when the resource keeps its stdout secret
    stderr: str
    started: float
    finished: float
    dial_attempts: int
    bytes_sent: int = 0  # a CopyToRemote: the bytes it sent

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass
class ResourceState:
    type: str
    name: str
    id: str
    inputs: dict
    outputs: dict
    dependencies: set[Key] = field(default_factory=set)
    deleted_with: Optional[Key] = None


def unwrap_secrets(value: Any) -> Any:
    """Plain values; assets become {"asset": kind, "path": ...}, comparable between runs."""
    if isinstance(value, (pulumi.FileAsset, pulumi.FileArchive)):
        return {"asset": type(value).__name__, "path": value.path}
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


class HostKeyMismatch(Exception):
    pass


class SshExecutor:
    """Runs one command over SSH the way pulumi-command's remote.Command does."""

    def __init__(self, dial_backoff: float = 0.2, max_backoff: float = 2.0,
                 command_timeout: float = 120.0):
        self.dial_backoff = dial_backoff
        self.max_backoff = max_backoff
        self.command_timeout = command_timeout

    def dial(self, connection: dict) -> tuple[paramiko.Transport, int]:
        host = connection["host"]
        port = int(connection.get("port") or 22)
        limit = int(connection.get("dialErrorLimit", 10))
        per_dial = float(connection.get("perDialTimeout", 15))
        attempts = 0
        delay = self.dial_backoff
        while True:
            attempts += 1
            try:
                sock = socket.create_connection((host, port), timeout=per_dial)
                transport = paramiko.Transport(sock)
                transport.start_client(timeout=per_dial)
                self.check_host_key(transport, connection)
                key = paramiko.Ed25519Key.from_private_key(io.StringIO(connection["privateKey"]))
                transport.auth_publickey(connection["user"], key)
                return transport, attempts
            except HostKeyMismatch:
                # Retrying cannot make a wrong key right: refuse at once.
                raise
            except (OSError, paramiko.SSHException, EOFError) as error:
                if limit >= 0 and attempts > limit:
                    raise ConnectionError(f"could not connect after {attempts} attempts: {error}") from None
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff)

    @staticmethod
    def check_host_key(transport: paramiko.Transport, connection: dict) -> None:
        pinned = connection.get("hostKey")
        if not pinned:
            return  # like pulumi-command: no pinned key, no check
        offered = transport.get_remote_server_key()
        offered_line = f"{offered.get_name()} {offered.get_base64()}"
        if " ".join(pinned.split()[:2]) != offered_line:
            transport.close()
            raise HostKeyMismatch(
                f"ssh: handshake failed: host key mismatch: the server offered {offered_line}, "
                f"the stack pins {' '.join(pinned.split()[:2])}")

    def run(self, connection: dict, command: str, stdin: Optional[str]) -> tuple[int, str, str, int]:
        transport, attempts = self.dial(connection)
        try:
            channel = transport.open_session()
            channel.settimeout(self.command_timeout)
            channel.exec_command(command)
            if stdin:
                channel.sendall(stdin.encode())
            channel.shutdown_write()
            stdout, stderr = bytearray(), bytearray()
            deadline = time.monotonic() + self.command_timeout
            while True:
                if channel.recv_ready():
                    stdout += channel.recv(65536)
                elif channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(65536)
                elif channel.exit_status_ready() and not channel.recv_ready() \
                        and not channel.recv_stderr_ready():
                    break
                elif time.monotonic() > deadline:
                    raise TimeoutError(f"the command did not finish within {self.command_timeout}s")
                else:
                    time.sleep(0.01)
            while channel.recv_ready():
                stdout += channel.recv(65536)
            while channel.recv_stderr_ready():
                stderr += channel.recv_stderr(65536)
            status = channel.recv_exit_status()
            return status, stdout.decode(errors="replace"), stderr.decode(errors="replace"), attempts
        finally:
            transport.close()

    def copy(self, connection: dict, local: Path, remote_path: str) -> tuple[int, int]:
        """pulumi-command's CopyToRemote of one file: SFTP, the parent directories
        made when the target is new, into the directory when it is one. Streamed in
        chunks (paramiko's putfo). Returns (bytes sent, dial attempts)."""
        transport, attempts = self.dial(connection)
        try:
            sftp = paramiko.SFTPClient.from_transport(transport)
            target = remote_path
            try:
                if stat.S_ISDIR(sftp.stat(target).st_mode):
                    target = posixpath.join(target, local.name)
            except FileNotFoundError:
                parent, made = posixpath.dirname(target), []
                while parent and parent not in (".", "/"):
                    try:
                        sftp.stat(parent)
                        break
                    except FileNotFoundError:
                        made.append(parent)
                        parent = posixpath.dirname(parent)
                for directory in reversed(made):
                    try:
                        sftp.mkdir(directory)
                    except OSError:
                        # Like MkdirAll: a copy running beside this one made it first.
                        if not stat.S_ISDIR(sftp.stat(directory).st_mode):
                            raise
            with open(local, "rb") as handle:
                sent = sftp.putfo(handle, target, file_size=local.stat().st_size).st_size
            return sent, attempts
        finally:
            transport.close()


def _trim_newline(text: str) -> str:
    # pulumi-command drops the trailing newline of stdout and stderr.
    return text[:-1] if text.endswith("\n") else text


# The node scripts the lab can really run: the bootstrap layer (and its preflight),
# with a GPU node's driver, toolkit and containerd runtime steps, and the upgrade.
# Commands running any other script (the serving layers' waits on Kubernetes
# endpoints, the smoke prediction) need a real API server and images: they stay
# mocked, and `LabRunner.mocked_commands` lists them.
EMULATED_SCRIPTS = frozenset({
    "preflight-facts.sh", "prepare.sh", "init-control-plane.sh", "read-kubeconfig.sh",
    "join-token.sh", "join-worker.sh", "node-membership.sh", "wait-nodes-ready.sh", "reset.sh",
    "upload-to-claim.sh",
    "issue-member-kubeconfig.sh",
    "gpu-driver.sh", "gpu-toolkit.sh", "gpu-runtime.sh",
    # The upgrade: its version check, its gates and each node's upgrade.
    "upgrade-versions.sh", "upgrade-gates.sh", "upgrade-node.sh",
})


def script_of(command: Optional[str]) -> str:
    """The scripts/node/ file a rendered command runs (its last word, $0 of `bash -c`)."""
    return command.rsplit(" ", 1)[-1].strip("'") if command else ""


def plain_outputs(outputs: dict) -> dict:
    """The stack outputs that are not secret, as plain values (the engine hands a
    StackReference the secret ones encrypted; the program reads only plain ones)."""
    plain = {}
    for name, value in outputs.items():
        if isinstance(value, pulumi.Output):
            if sync_await._sync_await(value.is_secret()):
                continue
            value = sync_await._sync_await(value.future())
        plain[name] = value
    return plain


class LabMocks(pulumi.runtime.Mocks):
    """Mocks whose remote commands really run; everything else is echoed back."""

    def __init__(self, runner: "LabRunner"):
        self.runner = runner

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return self.runner._register(args.typ, args.name, unwrap_secrets(dict(args.inputs)))

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def _ignored_changes(type_: str, name: str) -> list[str]:
    monitor = pulumi.runtime.settings.get_monitor()
    options = getattr(monitor, "options", {}).get((type_, name), {})
    return options.get("ignore_changes", [])


class LabRunner:
    def __init__(self, node_names: Optional[dict[str, str]] = None, *,
                 on_resource: Optional[Callable[[str, str, dict], None]] = None,
                 on_delete: Optional[Callable[[str, str, dict], None]] = None,
                 executor: Optional[SshExecutor] = None, stack: str = "lab",
                 also_run: frozenset[str] = frozenset()):
        """`node_names` maps addresses to node names for messages; `on_resource` is
        called for each mocked resource that is created (the lab uses it to let the
        Calico release make kubelets Ready), `on_delete` for each one deleted on its
        own (not with the cluster). `also_run`: node scripts to run for real besides
        EMULATED_SCRIPTS (the etcd snapshot timer's install, which needs the lab's
        etcd release: tests/lab/etcd.py)."""
        self.node_names = node_names or {}
        self.emulated = EMULATED_SCRIPTS | also_run
        self.on_resource = on_resource
        self.on_delete = on_delete
        self.ssh = executor or SshExecutor()
        self.stack = stack
        self.state: dict[Key, ResourceState] = {}
        # The stack outputs of the last successful `up`, not secret ones: what the
        # program's StackReference to its own stack reads (components/previous_outputs.py).
        self.stack_outputs: dict[str, Any] = {}
        self.transcript: list[CommandRun] = []
        self.last_run: list[CommandRun] = []
        self._lock = threading.Lock()
        self._failures: list[StepFailure] = []
        self._stopping = threading.Event()
        self._pending_deletes: list[ResourceState] = []
        self.mocked_commands: set[str] = set()
        self._registered: set[Key] = set()
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)

    # --- running one command ----------------------------------------------------------

    def _node_of(self, host: str) -> str:
        return self.node_names.get(host, host)

    def _execute(self, name: str, inputs: dict, phase: str, script: str, stdin: Optional[str]) -> tuple[str, str]:
        connection = inputs["connection"]
        host = connection["host"]
        node = self._node_of(host)
        started = time.time()
        secret_stdout = (inputs.get("logging") or "stdoutAndStderr").lower() in ("stderr", "none")
        try:
            status, stdout, stderr, attempts = self.ssh.run(connection, script, stdin)
        except Exception as error:  # dial failure, key mismatch, timeout
            self._record(CommandRun(name, node, host, phase, None, "", str(error), started, time.time(), 0))
            raise self._fail(name, node, host, phase, str(error))
        shown = "[secret]" if secret_stdout else stdout
        self._record(CommandRun(name, node, host, phase, status, shown, stderr, started, time.time(), attempts))
        if status != 0:
            tail = "\n".join(stderr.strip().splitlines()[-5:])
            raise self._fail(name, node, host, phase, f"exit status {status}: {tail}")
        return _trim_newline(stdout), _trim_newline(stderr)

    def _execute_local(self, name: str, inputs: dict, phase: str, script: str) -> tuple[str, str]:
        import os
        import subprocess
        import sys
        env = {**os.environ, **(inputs.get("environment") or {}), "KSERVE_CLUSTER_NO_VENV": "1",
               "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        started = time.time()
        result = subprocess.run(["/bin/sh", "-c", script], cwd=str(offline_program.ROOT),
                                input=inputs.get("stdin"), env=env, capture_output=True, text=True,
                                timeout=900)
        self._record(CommandRun(name, "local", "localhost", phase, result.returncode, result.stdout,
                                result.stderr, started, time.time(), 0))
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            raise self._fail(name, "local", "localhost", phase, f"exit status {result.returncode}: {tail}")
        return _trim_newline(result.stdout), _trim_newline(result.stderr)

    def _copy(self, name: str, inputs: dict) -> None:
        connection = inputs["connection"]
        host = connection["host"]
        node = self._node_of(host)
        local = Path(inputs["source"]["path"])
        # Pulumi runs the program, and so resolves relative asset paths, in the project directory.
        local = local if local.is_absolute() else offline_program.ROOT / local
        started = time.time()
        try:
            sent, attempts = self.ssh.copy(connection, local, inputs["remotePath"])
        except Exception as error:  # dial failure, key mismatch, SFTP error
            self._record(CommandRun(name, node, host, "copy", None, "", str(error), started,
                                    time.time(), 0))
            raise self._fail(name, node, host, "copy", str(error))
        self._record(CommandRun(name, node, host, "copy", 0, f"copied {local} to "
                                f"{inputs['remotePath']}", "", started, time.time(), attempts,
                                bytes_sent=sent))

    def _record(self, run: CommandRun) -> None:
        with self._lock:
            self.transcript.append(run)
            self.last_run.append(run)

    def _fail(self, name, node, host, phase, detail) -> LabRunError:
        failure = StepFailure(name, node, host, phase, detail)
        with self._lock:
            self._failures.append(failure)
        self._stopping.set()
        return LabRunError([failure])

    # --- registrations (called on the mock runtime's worker threads) ----------------

    def _register(self, type_: str, name: str, inputs: dict) -> tuple[str, dict]:
        key = (type_, name)
        with self._lock:
            if self._stopping.is_set():
                raise LabRunError([StepFailure(name, "-", "-", "create", "not started: the run is stopping")])
            self._in_flight += 1
            self._registered.add(key)
            previous = self.state.get(key)
        if previous is not None:
            # Like the engine: an input named in ignore_changes keeps its old value.
            ignored = _ignored_changes(type_, name)
            inputs = {**inputs, **{k: previous.inputs[k] for k in ignored if k in previous.inputs}}
        try:
            if type_ == COMMAND and script_of(inputs.get("create")) not in self.emulated:
                with self._lock:
                    self.mocked_commands.add(name)
                outputs = dict(inputs, stdout=offline_program.ClusterMocks.default_stdout(name, inputs),
                               stderr="")
                new = ResourceState(type_, name, previous.id if previous else f"{name}-id", inputs, outputs)
                self._save(new, previous)
                return new.id, new.outputs
            if type_ == LOCAL_COMMAND:
                if previous is not None and previous.inputs == inputs:
                    return previous.id, previous.outputs
                stdout = stderr = ""
                if inputs.get("create") and (previous is None or inputs.get("triggers") != previous.inputs.get("triggers")):
                    stdout, stderr = self._execute_local(name, inputs, "create", inputs["create"])
                new = ResourceState(type_, name, previous.id if previous else f"{name}-{uuid.uuid4().hex[:8]}",
                                    inputs, dict(inputs, stdout=stdout, stderr=stderr))
                self._save(new, previous)
                return new.id, new.outputs
            if type_ not in (COMMAND, COPY_TO_REMOTE):
                if previous is None and self.on_resource is not None:
                    self.on_resource(type_, name, inputs)
                # What a provider computes (a pulumi-tls key's PEMs, a StackReference's
                # outputs: the last successful up's), as the offline mocks give it.
                outputs = dict(inputs, **offline_program.provider_outputs(type_, inputs,
                                                                          self.stack_outputs))
                new = ResourceState(type_, name, previous.id if previous else f"{name}-id", inputs, outputs)
                self._save(new, previous)
                return new.id, new.outputs
            if previous is not None and previous.inputs == inputs:
                return previous.id, previous.outputs  # unchanged: the engine does nothing
            replace = previous is not None and previous.inputs.get("triggers") != inputs.get("triggers")
            if type_ == COPY_TO_REMOTE:
                # Created, replaced (triggers) or updated (source, remotePath): it copies.
                # Its delete does nothing, as pulumi-command's never deletes what it copied.
                self._copy(name, inputs)
                new_id = previous.id if previous is not None and not replace \
                    else f"{name}-{uuid.uuid4().hex[:8]}"
                self._save(ResourceState(type_, name, new_id, inputs, dict(inputs)), None)
                return new_id, dict(inputs)
            if previous is None or replace:
                stdout, stderr = self._execute(name, inputs, "create", inputs["create"], inputs.get("stdin"))
                new_id = f"{name}-{uuid.uuid4().hex[:8]}"
                if replace:
                    with self._lock:
                        self._pending_deletes.append(previous)
            else:
                script = inputs.get("update") or inputs["create"]
                stdout, stderr = self._execute(name, inputs, "update", script, inputs.get("stdin"))
                new_id = previous.id
            outputs = dict(inputs, stdout=stdout, stderr=stderr)
            self._save(ResourceState(type_, name, new_id, inputs, outputs), None)
            return new_id, outputs
        finally:
            with self._lock:
                self._in_flight -= 1
                self._idle.notify_all()

    def _save(self, new: ResourceState, previous: Optional[ResourceState]) -> None:
        with self._lock:
            if previous is not None:
                new.dependencies, new.deleted_with = previous.dependencies, previous.deleted_with
            self.state[(new.type, new.name)] = new

    # --- the engine's verbs -----------------------------------------------------------

    def up(self, config: dict, secret_private_key: str) -> offline_program.Evaluation:
        """Like `pulumi up`: create/update what changed, then delete what was removed."""
        self._begin()
        evaluation, error = self._evaluate(config, secret_private_key)
        self._wait_idle()
        self._record_dependencies()
        if self._failures or error is not None:
            raise LabRunError(self._failures or [StepFailure("program", "-", "-", "create", repr(error))])
        removed = [s for k, s in self.state.items() if k not in self._registered]
        self._delete(removed + self._pending_deletes)
        self._pending_deletes = []
        self.stack_outputs = self._evaluated_outputs  # a failed up keeps the last good ones
        return evaluation

    def destroy(self) -> None:
        """Like `pulumi destroy`: every delete, dependents first, in parallel where possible."""
        self._begin()
        self._delete(list(self.state.values()))

    def rerun_creates(self) -> None:
        """Run every emulated command's create again, in dependency order (independent
        ones in parallel), as a re-run after a half-finished `up` would."""
        self._begin()
        pending = dict(self.state)
        while pending:
            ready = [k for k, s in pending.items() if not (s.dependencies & set(pending))]
            if not ready:
                raise RuntimeError("dependency cycle among " + ", ".join(n for _, n in pending))
            runnable = [pending[k] for k in ready if pending[k].type == COMMAND
                        and script_of(pending[k].inputs.get("create")) in self.emulated]
            with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
                list(pool.map(lambda r: self._execute(r.name, r.inputs, "create", r.inputs["create"],
                                                       r.inputs.get("stdin")), runnable))
            for key in ready:
                del pending[key]

    def _begin(self) -> None:
        self._failures = []
        self._stopping.clear()
        self._registered = set()
        self.last_run = []

    def _evaluate(self, config: dict, secret_private_key: str):
        """Evaluate in a fresh thread: its own event loop (a failed run leaves tasks
        behind in the old one) and a thread pool wide enough for every node at once."""
        result: dict[str, Any] = {}

        def target():
            loop = sync_await._ensure_event_loop()
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=128)
            loop.set_default_executor(pool)
            try:
                result["evaluation"] = offline_program.evaluate(
                    config, stack=self.stack, secret_private_key=secret_private_key,
                    mocks=LabMocks(self))
                result["outputs"] = plain_outputs(result["evaluation"].outputs)
            except BaseException as error:  # reported by up()
                result["error"] = error
            finally:
                result["monitor"] = pulumi.runtime.settings.get_monitor()
                # After a failure, registrations waiting on the failed step are still
                # pending: cancel them (they can start nothing, the run is stopping).
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                pool.shutdown(wait=False)
                loop.close()

        thread = threading.Thread(target=target, name="lab-evaluation", daemon=True)
        thread.start()
        thread.join()
        self._monitor = result.get("monitor")
        self._evaluated_outputs = result.get("outputs", {})
        return result.get("evaluation"), result.get("error")

    def _wait_idle(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0)

    def _record_dependencies(self) -> None:
        """Dependencies, parents, providers and deleted_with from the registrations."""
        registrations = list(getattr(self._monitor, "registrations", []))
        by_urn = {r.urn: (r.type, r.name) for r in registrations}
        for registration in registrations:
            key = (registration.type, registration.name)
            if key not in self.state:
                continue
            edges = set(registration.dependencies)
            if registration.parent:
                edges.add(registration.parent)
            if registration.provider:
                edges.add(registration.provider.rsplit("::", 1)[0])
            resolved = {by_urn[u] for u in edges if u in by_urn}
            self.state[key].dependencies = resolved
            self.state[key].deleted_with = by_urn.get(registration.deleted_with)

    def _delete(self, resources: list[ResourceState]) -> None:
        """Run deletes, each after every resource that depends on it; raise on failure."""
        going = {(r.type, r.name): r for r in resources}
        remaining = dict(going)
        failures: list[StepFailure] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            running: dict[concurrent.futures.Future, Key] = {}
            while remaining or running:
                if not failures:
                    for key, resource in list(remaining.items()):
                        others = [k for k in list(remaining) + list(running.values()) if k != key]
                        if not any(key in going[k].dependencies for k in others):
                            del remaining[key]
                            running[pool.submit(self._delete_one, resource, going)] = key
                if not running:
                    break
                finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    key = running.pop(future)
                    try:
                        future.result()
                        with self._lock:
                            # A replaced resource's old state goes; its replacement,
                            # saved under the same key, stays (as in the engine).
                            if self.state.get(key) is going[key]:
                                del self.state[key]
                    except LabRunError as error:
                        failures.extend(error.failures)
        if failures:
            raise LabRunError(failures)

    def _delete_one(self, resource: ResourceState, going: dict[Key, ResourceState]) -> None:
        if resource.deleted_with is not None and resource.deleted_with in going:
            return  # goes with its target (e.g. the cluster), no delete of its own
        if resource.type == COMMAND and resource.inputs.get("delete") \
                and script_of(resource.inputs.get("create")) in self.emulated:
            self._execute(resource.name, resource.inputs, "delete", resource.inputs["delete"], None)
        elif resource.type == LOCAL_COMMAND:
            if resource.inputs.get("delete"):
                self._execute_local(resource.name, resource.inputs, "delete", resource.inputs["delete"])
        elif resource.type not in (COMMAND, COPY_TO_REMOTE) and self.on_delete is not None:
            self.on_delete(resource.type, resource.name, resource.inputs)


LOCAL_PATH_MANIFEST = "/deploy/local-path-storage.yaml"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"


def lab_runner(lab, **kwargs) -> LabRunner:
    """A runner aimed at the lab's nodes, whose Calico release makes the nodes Ready,
    whose storage provisioner makes its class and whose claims become claims pods
    can mount (through the kubectl stand-in)."""
    def on_resource(type_: str, name: str, inputs: dict) -> None:
        if type_.startswith("kubernetes:helm.sh/") and inputs.get("chart") == "tigera-operator":
            network = ((inputs.get("values") or {}).get("installation") or {}).get("calicoNetwork") or {}
            lab.mark_cni_ready([pool.get("cidr", "") for pool in network.get("ipPools") or []])
        elif type_ == "kubernetes:yaml/v2:ConfigFile" and \
                str(inputs.get("file", "")).endswith(LOCAL_PATH_MANIFEST):
            lab.add_storage_class("local-path")
        elif type_ == "kubernetes:storage.k8s.io/v1:StorageClassPatch":
            metadata = inputs.get("metadata") or {}
            default = (metadata.get("annotations") or {}).get(
                "storageclass.kubernetes.io/is-default-class") == "true"
            lab.add_storage_class(metadata.get("name", name), default=default)
        elif type_ == PVC:
            metadata = inputs.get("metadata") or {}
            lab.add_claim(metadata.get("namespace", "default"), metadata.get("name", name),
                          inputs.get("spec") or {})

    def on_delete(type_: str, name: str, inputs: dict) -> None:
        if type_ == PVC:
            metadata = inputs.get("metadata") or {}
            lab.remove_claim(metadata.get("namespace", "default"), metadata.get("name", name))
    class NodeNames:
        @staticmethod
        def get(host: str, default: str) -> str:
            node = lab.node_at(host)
            return node.name if node else default
    return LabRunner(NodeNames(), on_resource=on_resource, on_delete=on_delete, **kwargs)


def layers_first(runner, version, up_once) -> int:
    """The runs a train move makes before its nodes may move (Istio 1.24, say, stops at
    Kubernetes 1.31: components/upgrade/layers.py plans one layer step per `up`, from
    the last run's `layerVersions` output, which the lab runner hands back). Each is an
    ordinary `up` to `version`; returns how many ran."""
    from components.upgrade.layer_run import LAYERS_OUTPUT
    from components.upgrade.layers import plan_layers
    runs = 0
    while runs < 5:
        plan = plan_layers(runner.stack_outputs.get(LAYERS_OUTPUT) or {}, version)
        if plan.problems or plan.kubernetes_moves or not plan.moves:
            return runs
        up_once()
        runs += 1
    raise AssertionError(f"the layers never let the nodes move to {version}")
