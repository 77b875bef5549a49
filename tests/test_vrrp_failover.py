"""Real keepalived moves the virtual IP the way components/cluster/ha_endpoint.py means it to.

The SSH lab stands keepalived in (its nodes share the host's loopback, and VRRP
refuses lo: docs/testing.md). Here each of three control planes gets a network
namespace of its own, joined by a bridge, and runs Debian's keepalived with the
config the program renders for it. Only the haproxy check is replaced: a script
that passes while a file exists, so that the test can make a node unhealthy.

Needs root, keepalived and `ip netns`; skipped with the reason otherwise, failed
instead where KSERVE_LAB_REQUIRED=1 says this machine must run the lab.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from components.cluster.ha_endpoint import CHECK_SCRIPT, render_keepalived_config
from components.stack_config import parse_stack_config
from test_lab_preflight import netns_unavailable_reason, require_netns

SUBNET = "10.232.0"
VIRTUAL_IP = f"{SUBNET}.20"
INTERFACE = "vr0"
NAMES = ("cp1", "cp2", "cp3")


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "real VRRP needs root (network namespaces, keepalived)"
    if shutil.which("keepalived") is None:
        return "keepalived is not installed (Debian's package `keepalived`)"
    return netns_unavailable_reason()


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


class VrrpNetwork:
    """Three control planes' network namespaces on one bridge, each running keepalived."""

    def __init__(self, directory: Path):
        self.dir = directory
        tag = f"{os.getpid() % 100000}"
        self.bridge = f"ksv{tag}b"
        self.namespaces = {name: f"ksv{tag}-{name}" for name in NAMES}
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopped: set[str] = set()
        config = parse_stack_config({
            "nodes": [{"name": name, "address": f"{SUBNET}.2{i}", "role": "control-plane"}
                      for i, name in enumerate(NAMES, start=1)],
            "kubernetes": {"highAvailability": {"virtualIP": VIRTUAL_IP, "interface": INTERFACE}},
        }, has_secret_private_key=True)
        self.configs = {n.name: render_keepalived_config(config.kubernetes.high_availability, n,
                                                         config.control_planes)
                        for n in config.control_planes}
        self.addresses = {n.name: n.address for n in config.control_planes}

    def create(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("link", "set", self.bridge, "up")
        for index, (name, namespace) in enumerate(self.namespaces.items(), start=1):
            host_side = f"{self.bridge[:-1]}h{index}"
            ip("netns", "add", namespace)
            ip("link", "add", host_side, "type", "veth", "peer", "name", INTERFACE, "netns", namespace)
            ip("link", "set", host_side, "master", self.bridge, "up")
            ip("-n", namespace, "addr", "add", f"{self.addresses[name]}/24", "dev", INTERFACE)
            ip("-n", namespace, "link", "set", INTERFACE, "up")
            ip("-n", namespace, "link", "set", "lo", "up")

    def start(self, name: str) -> None:
        check = self.dir / f"check-{name}.sh"
        check.write_text(f"#!/bin/sh\ntest -e {self.dir}/healthy-{name}\n")
        check.chmod(0o755)
        self.healthy(name, True)
        config = self.dir / f"{name}.conf"
        config.write_text(self.configs[name].replace(CHECK_SCRIPT, str(check)))
        pids = [a for kind in ("p", "r", "c") for a in (f"-{kind}", str(self.dir / f"{name}.{kind}.pid"))]
        self.processes[name] = subprocess.Popen(
            ["ip", "netns", "exec", self.namespaces[name], "keepalived", "--dont-fork",
             "--log-console", "--vrrp", "-f", str(config), *pids],
            stdout=open(self.dir / f"{name}.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)

    def healthy(self, name: str, ok: bool) -> None:
        marker = self.dir / f"healthy-{name}"
        marker.touch() if ok else marker.unlink(missing_ok=True)

    def stop_namespace(self, name: str) -> None:
        """As if the machine went down: keepalived killed, no goodbye advert, link down."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(timeout=10)
        ip("-n", self.namespaces[name], "link", "set", INTERFACE, "down")
        self.stopped.add(name)

    def holders(self) -> list[str]:
        """The live nodes that have the virtual IP on their interface."""
        return [name for name, namespace in self.namespaces.items() if name not in self.stopped
                and f" {VIRTUAL_IP}/" in ip("-n", namespace, "-4", "-o", "addr", "show", "dev", INTERFACE)]

    def wait_for_holder(self, expected: str, timeout: float) -> float:
        """Seconds until `expected` alone holds the address; fails with the logs otherwise."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.holders() == [expected]:
                return time.monotonic() - start
            time.sleep(0.2)
        logs = "\n".join(f"--- {n}\n" + (self.dir / f"{n}.log").read_text(errors="replace")[-1500:]
                         for n in NAMES if (self.dir / f"{n}.log").exists())
        pytest.fail(f"{expected} did not take {VIRTUAL_IP} within {timeout:g}s "
                    f"(holders: {self.holders()})\n{logs}")

    def remove(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for namespace in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@pytest.fixture
def vrrp(tmp_path):
    require_netns(unavailable_reason())
    # keepalived runs the check script as root only if no other user can change it,
    # nor any directory above it.
    tmp_path.chmod(0o755)
    network = VrrpNetwork(tmp_path)
    try:
        network.create()
        yield network
    finally:
        network.remove()


def test_the_virtual_ip_follows_priority_health_and_a_lost_machine(vrrp):
    for name in NAMES:
        vrrp.start(name)
    # Stack order sets the priorities (150, 140, 130): the first control plane holds it.
    vrrp.wait_for_holder("cp1", timeout=20)

    # cp1's haproxy check fails (3 times, 3 s apart): -50 puts it under both others.
    vrrp.healthy("cp1", False)
    vrrp.wait_for_holder("cp2", timeout=30)

    # Healthy again (2 passes): it preempts and takes the address back.
    vrrp.healthy("cp1", True)
    vrrp.wait_for_holder("cp1", timeout=30)

    # cp1's machine is lost: the next in stack order takes over once cp1's adverts stop.
    vrrp.stop_namespace("cp1")
    vrrp.wait_for_holder("cp2", timeout=20)
