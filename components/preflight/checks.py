"""The preflight checks, as named rules over the facts each node reported (pure).

Each rule gives pass, warn or fail per node, with a message that says what to
do. `scripts/node/preflight-facts.sh` gathers the facts; nothing here touches
a node.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional

from components import versions
from components.cluster import certificates
from components.gpu.config import GpuConfig
from components.stack_config import CONTROL_PLANE, Node

PASS, WARN, FAIL = "pass", "warn", "fail"

# kubeadm's preflight thresholds for a control plane.
MIN_CONTROL_PLANE_CPUS = 2
MIN_CONTROL_PLANE_MEMORY_MB = 1700
# Ports kubeadm and its components bind (Kubernetes 1.31 "Ports and Protocols").
CONTROL_PLANE_PORTS = (6443, 2379, 2380, 10250, 10257, 10259)
WORKER_PORTS = (10250, 10256)
MAX_CLOCK_SKEW_SECONDS = 5.0  # certificates and tokens start failing beyond a few seconds
# What the serving layers (Istio, Knative, KServe, cert-manager) need on the nodes that run
# workloads, before monitoring and models: stacks/Pulumi.dev.yaml asks 8 GB for them and
# one 1 GiB model.
SERVING_BASELINE_MB = 7168

# The driver branch, the DKMS build and the toolkit on a GPU node (nvidia-driver-580-server
# and its libraries take about 1 GB installed; the rest is room for the build and apt's cache).
MIN_GPU_DRIVER_DISK_MB = 2048

CHECKS = ("ssh", "sudo", "os", "resources", "identity", "swap", "ports", "dpkg", "clock",
          "repositories", "leftovers", "gpu", "certs", "runc")


@dataclass(frozen=True)
class Result:
    check: str
    status: str
    message: str = ""
    detail: str = ""  # a short value shown next to the status in the table (runc's version)

    @property
    def cell(self) -> str:
        return f"{self.status} {self.detail}" if self.detail else self.status


@dataclass
class NodeReport:
    node: str
    address: str
    results: dict[str, Result] = field(default_factory=dict)

    def add(self, check: str, status: str, message: str = "", detail: str = "") -> None:
        self.results[check] = Result(check, status, message, detail)


@dataclass
class Report:
    nodes: list[NodeReport]

    @property
    def failed(self) -> bool:
        return any(r.status == FAIL for n in self.nodes for r in n.results.values())

    def problems(self) -> list[str]:
        """One line per warning or failure, saying what to do."""
        return [f"{n.node} ({n.address}) {r.check} {r.status.upper()}: {r.message}"
                for n in self.nodes for r in n.results.values() if r.status != PASS]

    def table(self) -> str:
        head = ["node"] + list(CHECKS)
        rows = [[f"{n.node} ({n.address})"] +
                [n.results[c].cell if c in n.results else "-" for c in CHECKS]
                for n in self.nodes]
        widths = [max(len(str(row[i])) for row in [head] + rows) for i in range(len(head))]
        lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
                 for row in [head] + rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"ok": not self.failed, "nodes": [
            {"node": n.node, "address": n.address,
             "checks": {c: {"status": r.status, "message": r.message, **({"detail": r.detail} if r.detail else {})}
                        for c, r in n.results.items()}}
            for n in self.nodes]}, indent=2)

    def render(self) -> str:
        problems = self.problems()
        summary = ("preflight FAILED: fix the problems above, then run it again."
                   if self.failed else "preflight passed" + (" with warnings." if problems else "."))
        return "\n".join([self.table(), ""] + problems + ([""] if problems else []) + [summary])


def parse_facts(text: str) -> dict[str, str]:
    facts = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and key.isidentifier():
            facts[key] = value.strip()
    return facts


def node_ports(node: Node, ingress_node_port: Optional[int] = None,
               haproxy_port: Optional[int] = None) -> tuple[int, ...]:
    """The ports kubeadm and the layers need free on `node`; `haproxy_port` is the
    virtual IP's haproxy on control planes (kubernetes.highAvailability.port)."""
    ports = CONTROL_PLANE_PORTS if node.role == CONTROL_PLANE else WORKER_PORTS
    if haproxy_port and node.role == CONTROL_PLANE:
        ports = ports + (haproxy_port,)
    return ports + ((ingress_node_port,) if ingress_node_port else ())


def probe_urls(train: versions.Train = versions.DEFAULT_TRAIN) -> tuple[str, ...]:
    """What the nodes must reach: the stack's train's pkgs.k8s.io repository (one per
    minor) and the image registry."""
    return (train.kubernetes_apt_repo, versions.IMAGE_REGISTRY_PROBE_URL)


def _check_node(report: NodeReport, node: Node, facts: dict[str, str]) -> None:
    if facts.get("sudo") == "ok":
        report.add("sudo", PASS)
    else:
        report.add("sudo", FAIL, f"sudo asks {node.ssh_user} for a password. Give the user "
                   f"passwordless sudo: echo '{node.ssh_user} ALL=(ALL) NOPASSWD:ALL' | "
                   f"sudo tee /etc/sudoers.d/{node.ssh_user}")
    os_id, os_version = facts.get("os_id", "unknown"), facts.get("os_version", "unknown")
    if (os_id, os_version) == ("ubuntu", "22.04"):
        report.add("os", PASS)
    else:
        report.add("os", FAIL, f"the node runs {facts.get('os_name', os_id + ' ' + os_version)}; "
                   "only Ubuntu 22.04 is supported (the scripts and package pins are made for it). "
                   "Reinstall it with Ubuntu 22.04 or remove it from the stack.")
    cpus, memory = int(facts.get("cpus", "0") or 0), int(facts.get("memory_mb", "0") or 0)
    if node.role == CONTROL_PLANE and (cpus < MIN_CONTROL_PLANE_CPUS or memory < MIN_CONTROL_PLANE_MEMORY_MB):
        report.add("resources", FAIL, f"{cpus} CPU(s) and {memory} MB; kubeadm needs at least "
                   f"{MIN_CONTROL_PLANE_CPUS} CPUs and {MIN_CONTROL_PLANE_MEMORY_MB} MB on a "
                   "control plane. Give the VM more CPUs or memory.")
    elif memory < MIN_CONTROL_PLANE_MEMORY_MB:
        report.add("resources", WARN, f"{memory} MB of memory leaves little room for models; "
                   "give the worker at least 2 GB.")
    else:
        report.add("resources", PASS)
    swap = int(facts.get("swap_mb", "0") or 0)
    report.add("swap", PASS if swap == 0 else WARN, "" if swap == 0 else
               f"swap is on ({swap} MB); the prepare step turns it off and comments it out of "
               "/etc/fstab, since kubelet refuses to start with swap.")
    busy = facts.get("ports_busy", "").split()
    report.add("ports", PASS if not busy else FAIL, "" if not busy else
               f"port(s) {', '.join(busy)} are already in use; kubeadm and the ingress need them. "
               f"Find the owner with `sudo ss -ltnp | grep -E ':({'|'.join(busy)})\\b'` and stop it.")
    held = facts.get("dpkg_lock") == "held"
    report.add("dpkg", WARN if held else PASS, "" if not held else
               "the dpkg lock is held (unattended-upgrades after boot?); the prepare step waits "
               "up to 15 minutes for it. To check: `sudo fuser -v /var/lib/dpkg/lock-frontend`.")
    unreachable = facts.get("unreachable_urls", "").split()
    report.add("repositories", WARN if unreachable else PASS, "" if not unreachable else
               f"cannot reach {', '.join(unreachable)} from the node; packages and images must "
               "then come from a mirror or be there already (air-gapped lab).")
    leftovers = facts.get("leftovers", "").split()
    report.add("leftovers", FAIL if leftovers else PASS, "" if not leftovers else
               f"an earlier cluster is still on this node ({', '.join(leftovers)}). Reset it: "
               "`sudo kubeadm reset -f && sudo rm -rf /etc/cni/net.d`, or run "
               "`pulumi destroy` on the stack that built it.")


_RUNC_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:-rc\.?(\d+))?")


def _runc_key(version: str) -> Optional[tuple[int, int, int, int]]:
    """'1.3.3' -> (1, 3, 3, inf-ish); '1.4.0-rc.3' -> (1, 4, 0, 3): releases sort after
    their release candidates. Distribution suffixes (1.1.12-0ubuntu2) are ignored."""
    match = _RUNC_VERSION.match(version)
    if not match:
        return None
    major, minor, patch, rc = match.groups()
    return int(major), int(minor), int(patch), int(rc) if rc else 1 << 30


def runc_is_fixed(version: str) -> Optional[bool]:
    """Whether this runc has the fixes for versions.RUNC_ADVISORY; None if unreadable."""
    key = _runc_key(version)
    if key is None:
        return None
    fixed = sorted(_runc_key(v) for v in versions.RUNC_FIXED_RELEASES)
    for release in fixed:
        if key[:2] == release[:2]:
            return key >= release
    return key[:2] > fixed[-1][:2]  # a later series has them; an older one does not


def _check_runc(report: NodeReport, facts: dict[str, str]) -> None:
    version = facts.get("runc", "")
    pin = versions.CONTAINERD_PACKAGE_VERSION
    if not version:
        report.add("runc", PASS, f"not installed yet; the prepare step installs containerd.io {pin} "
                   "with its runc.", detail="none")
        return
    fixed = runc_is_fixed(version)
    if fixed:
        report.add("runc", PASS, f"runc {version}", detail=version)
    elif fixed is None:
        report.add("runc", WARN, f"could not read runc's version ({version!r}); check that it has "
                   f"the fixes for {versions.RUNC_ADVISORY}: `runc --version` on the node.",
                   detail="unknown")
    else:
        report.add("runc", WARN, f"runc {version} predates the fixes for {versions.RUNC_ADVISORY} "
                   f"(fixed in runc {', '.join(versions.RUNC_FIXED_RELEASES)}): a container can "
                   f"break out to the node. The prepare step replaces it with the runc of "
                   f"containerd.io {pin}; to fix it now: "
                   f"sudo apt-get install --allow-change-held-packages 'containerd.io={pin}'.",
                   detail=version)


def _check_certs(report: NodeReport, node: Node, facts: dict[str, str],
                 renew_before_days: int) -> None:
    """A control plane's earliest certificate expiry (workers: nothing to show)."""
    if node.role != CONTROL_PLANE:
        return
    state, expiry = certificates.decode_expiration_fact(facts.get("cert_expiration", ""))
    if state == certificates.NO_CLUSTER:
        report.add("certs", PASS, "no control plane on this node yet: no certificates to check.",
                   detail="none")
    elif state == certificates.NEEDS_ROOT:
        report.add("certs", WARN, "the certificates' expiry is unknown: reading them needs root "
                   "and sudo asks for a password (see the sudo check).", detail="unknown")
    elif expiry is None:
        report.add("certs", WARN, "could not read the certificates' expiry (kubeadm certs "
                   "check-expiration failed); run `sudo kubeadm certs check-expiration` on "
                   "the node.", detail="unknown")
    else:
        warn, message = certificates.expiry_verdict(expiry, renew_before_days)
        report.add("certs", WARN if warn else PASS, message, detail=expiry.date)


def _gpu_count(facts: dict[str, str]) -> Optional[int]:
    value = facts.get("gpu_devices", "")
    return int(value) if value.isdigit() else None


def _check_gpu(report: NodeReport, facts: dict[str, str], gpu: GpuConfig) -> None:
    """A `gpu: nvidia` node: its GPUs, the driver there, and what installing one needs."""
    count = _gpu_count(facts)
    loaded = facts.get("nvidia_driver", "absent")
    has_driver = loaded not in ("absent", "failed", "")
    fails: list[str] = []
    warns: list[str] = []
    if count == 0:
        fails.append("no NVIDIA GPU on this node (lspci -n shows no display controller of "
                     "vendor 10de). Check that the GPU is passed through to the VM, or remove "
                     "gpu: nvidia from the node.")
    elif count is None:
        warns.append("lspci is missing, so the GPUs were not counted: "
                     "`sudo apt-get install pciutils`.")
    if not gpu.installs_driver:
        if not has_driver:
            fails.append(f"gpu.driver is preinstalled, but nvidia-smi {'failed' if loaded == 'failed' else 'is not installed'}"
                         ": no driver answers. Install and load the driver (then reboot), or set "
                         "gpu.driver to an Ubuntu branch, e.g. 580-server, to let the driver step "
                         "install it.")
    else:
        branch_major = gpu.driver.split("-")[0]
        if has_driver and not loaded.startswith(branch_major + "."):
            warns.append(f"driver {loaded} is loaded, and gpu.driver asks for {gpu.driver}: "
                         "installing it needs a reboot, which pulumi up never does. The driver "
                         "step stops and says how to drain and reboot the node; or set "
                         "gpu.driver: preinstalled to keep the driver there.")
        if facts.get("secure_boot") == "enabled" and not has_driver:
            warns.append("Secure Boot is on: the DKMS-built nvidia module is signed with a "
                         "machine-owner key that the firmware does not trust yet, and it will not "
                         "load until that key is enrolled. Either turn Secure Boot off in the "
                         "firmware, or after the driver step run `sudo mokutil --import "
                         "/var/lib/shim-signed/mok/MOK.der`, reboot and confirm the key on the "
                         "console (MOK manager).")
        if facts.get("kernel_headers") == "absent" and not has_driver:
            warns.append("no kernel headers for the running kernel (/lib/modules/$(uname -r)/build):"
                         " the driver step installs linux-headers-$(uname -r); if the archive no "
                         "longer has them for this kernel, upgrade the kernel and reboot first.")
        free = facts.get("disk_free_mb", "")
        if free.isdigit() and int(free) < MIN_GPU_DRIVER_DISK_MB and not has_driver:
            fails.append(f"{free} MB free on /; the driver, its DKMS build and the container "
                         f"toolkit need about {MIN_GPU_DRIVER_DISK_MB} MB. Free some space or "
                         "grow the disk.")
    detail = f"{count if count is not None else '?'} GPU" + (f", driver {loaded}" if has_driver else "")
    if fails:
        report.add("gpu", FAIL, " ".join(fails + warns), detail=detail)
    elif warns:
        report.add("gpu", WARN, " ".join(warns), detail=detail)
    else:
        report.add("gpu", PASS, detail, detail=detail)


def _check_model_gpus(reports: dict[str, NodeReport], nodes: list[Node],
                      facts: dict[str, dict[str, str]], model_gpus: dict[str, int]) -> None:
    """A model asking for more GPUs than the largest GPU node has is never scheduled:
    one pod's GPUs all come from one node. Known only here, where lspci counted them."""
    gpu_nodes = [n for n in nodes if n.gpu and n.name in facts]
    counts = {n.name: _gpu_count(facts[n.name]) for n in gpu_nodes}
    if not model_gpus or not counts or None in counts.values():
        return
    largest = max(counts.values())
    too_big = {model: wanted for model, wanted in model_gpus.items() if wanted > largest}
    if not too_big:
        return
    names = ", ".join(f"{model} ({wanted})" for model, wanted in sorted(too_big.items()))
    message = (f"model(s) {names} ask for more GPUs than the largest GPU node has ({largest}); "
               "one pod's GPUs all come from one node, so they would never be scheduled. "
               "Lower models[].resources.gpu, or add a node with more GPUs.")
    for node in gpu_nodes:
        earlier = reports[node.name].results.get("gpu")
        text = f"{earlier.message} {message}" if earlier and earlier.status != PASS else message
        reports[node.name].add("gpu", FAIL, text, detail=earlier.detail if earlier else "")


def _check_identity(reports: dict[str, NodeReport], facts: dict[str, dict[str, str]]) -> None:
    owners: dict[tuple[str, str], list[str]] = {}
    for name, node_facts in facts.items():
        for kind in ("hostname", "product_uuid"):
            value = node_facts.get(kind, "")
            if value and value != "unreadable":
                owners.setdefault((kind, value), []).append(name)
        for mac in node_facts.get("macs", "").split():
            owners.setdefault(("MAC address", mac), []).append(name)
    for name in facts:
        clashes = [(kind, value, others) for (kind, value), others in owners.items()
                   if name in others and len(others) > 1]
        if clashes:
            detail = "; ".join(f"{kind} {value} is shared with {', '.join(o for o in others if o != name)}"
                               for kind, value, others in clashes)
            reports[name].add("identity", FAIL, f"{detail}. Cloned VMs must get their own "
                              "hostname, MAC addresses and product_uuid (regenerate them in the "
                              "hypervisor), or kubeadm join breaks.")
        elif facts[name].get("product_uuid") == "unreadable":
            reports[name].add("identity", WARN, "product_uuid could not be read (sudo?); "
                              "its uniqueness was not checked.")
        else:
            reports[name].add("identity", PASS)


def _check_clock(reports: dict[str, NodeReport], offsets: Optional[dict[str, float]]) -> None:
    if offsets is None:
        for report in reports.values():
            report.add("clock", PASS, "not measured here: scripts/preflight.py measures clock skew")
        return
    for name, offset in offsets.items():
        if abs(offset) > MAX_CLOCK_SKEW_SECONDS:
            reports[name].add("clock", FAIL, f"the clock is {offset:+.1f}s off this machine's; "
                              "certificates and join tokens fail with skew. Enable time sync: "
                              "`sudo timedatectl set-ntp true`.")
        else:
            reports[name].add("clock", PASS)


def _check_monitoring_memory(reports: dict[str, NodeReport], nodes: list[Node],
                             facts: dict[str, dict[str, str]], needed_mb: int) -> None:
    """Warn (under `resources`) when the nodes that run workloads lack the memory for
    the serving layers plus the monitoring stack's requests."""
    workers = [n for n in nodes if n.role != CONTROL_PLANE]
    schedulable = [n for n in (workers or nodes) if n.name in facts]
    if needed_mb <= 0 or not schedulable:
        return
    total = sum(int(facts[n.name].get("memory_mb", "0") or 0) for n in schedulable)
    wanted = SERVING_BASELINE_MB + needed_mb
    if total >= wanted:
        return
    message = (f"the nodes that run workloads have {total} MB in all; the serving layers need "
               f"about {SERVING_BASELINE_MB} MB and monitoring asks for {needed_mb} MB more "
               f"({wanted} MB, models not counted). Give them more memory, add a worker, or "
               "leave monitoring off.")
    for node in schedulable:
        earlier = reports[node.name].results.get("resources")
        if earlier is not None and earlier.status == FAIL:
            continue
        text = f"{earlier.message} {message}" if earlier is not None and earlier.message else message
        reports[node.name].add("resources", WARN, text)


def evaluate(nodes: list[Node], facts_text: dict[str, Optional[str]],
             ssh_errors: Optional[dict[str, str]] = None,
             clock_offsets: Optional[dict[str, float]] = None,
             monitoring_memory_mb: int = 0, gpu: Optional[GpuConfig] = None,
             model_gpus: Optional[dict[str, int]] = None,
             renew_before_days: int = certificates.DEFAULT_RENEW_BEFORE_DAYS) -> Report:
    """Judge every node. `facts_text` maps node name to the facts script's output
    (None when SSH failed; the reason is in `ssh_errors`). `clock_offsets` (node
    time minus this machine's, in seconds) is known only to the CLI.
    `monitoring_memory_mb`: what the monitoring stack requests, when it is enabled.
    `gpu`: the stack's GPU settings; `model_gpus`: GPUs per model pod (`namespace/name`).
    `renew_before_days`: a control plane whose first certificate expires sooner warns."""
    gpu = gpu or GpuConfig()
    ssh_errors = ssh_errors or {}
    reports = {n.name: NodeReport(n.name, n.address) for n in nodes}
    facts = {}
    for node in nodes:
        text = facts_text.get(node.name)
        if text is None:
            reports[node.name].add("ssh", FAIL, ssh_errors.get(node.name, "no answer over SSH."))
            continue
        reports[node.name].add("ssh", PASS)
        facts[node.name] = parse_facts(text)
        _check_node(reports[node.name], node, facts[node.name])
        _check_runc(reports[node.name], facts[node.name])
        _check_certs(reports[node.name], node, facts[node.name], renew_before_days)
        if node.gpu:
            _check_gpu(reports[node.name], facts[node.name], gpu)
    _check_model_gpus(reports, nodes, facts, model_gpus or {})
    _check_identity(reports, facts)
    _check_monitoring_memory(reports, nodes, facts, monitoring_memory_mb)
    _check_clock(reports, None if clock_offsets is None else
                 {name: offset for name, offset in clock_offsets.items() if name in facts})
    return Report([reports[n.name] for n in nodes])
