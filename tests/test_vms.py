"""The lab's VMs on a workstation: scripts/vms.sh, scripts/vms/Vagrantfile and the
stack files they make machines for (stacks/Pulumi.vms.yaml, stacks/Pulumi.vm1.yaml).

No VM is started and no box is downloaded. Vagrant itself evaluates the
Vagrantfile (`vagrant validate`), with its state and home in a temporary directory;
with KSERVE_VMS_DESCRIBE=1 the Vagrantfile prints the machines it defines, which
are compared with the stack files, the box pin and preflight's floors. The
script's refusals run against a PATH without Vagrant, or a stand-in `vagrant`.
"""
import functools
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from components import versions
from components.plan.build import plan_stack
from components.plan.text import render_text
from components.preflight.checks import (
    MIN_CONTROL_PLANE_CPUS, MIN_CONTROL_PLANE_MEMORY_MB, SERVING_BASELINE_MB)
from components.stack_file import parse_stack_file, stack_file_config

ROOT = Path(__file__).resolve().parents[1]
VMS_SH = ROOT / "scripts" / "vms.sh"
VMS_DIR = ROOT / "scripts" / "vms"
STACKS = ("vms", "vm1")
VAGRANT = shutil.which("vagrant")
needs_vagrant = pytest.mark.skipif(
    VAGRANT is None, reason="vagrant is not installed (.ci/run installs it with apt-get)")
# VirtualBox's NAT network, the same inside every VM: no lab address may be in it.
VIRTUALBOX_NAT = ipaddress.ip_network("10.0.2.0/24")
VMS_NETWORK = ipaddress.ip_network("192.168.56.0/24")
# A VM reports less memory than it is given (the kernel keeps some for itself).
KERNEL_KEEPS_MB = 256


def vagrant_env(tmp_path, **extra):
    """Vagrant offline, with its home and its machines' state under tmp_path."""
    env = dict(os.environ, VAGRANT_HOME=str(tmp_path / "vagrant-home"),
               VAGRANT_DOTFILE_PATH=str(tmp_path / "vagrant-state"),
               VAGRANT_CHECKPOINT_DISABLE="1", VAGRANT_NO_COLOR="1")
    env.pop("VAGRANT_CWD", None)
    env.update(extra)
    return env


def validate(tmp_path, vagrantfile_dir=VMS_DIR, *args, **extra):
    return subprocess.run([VAGRANT, "validate", *args], cwd=vagrantfile_dir,
                          env=vagrant_env(tmp_path, **extra), capture_output=True,
                          text=True, timeout=120)


@functools.lru_cache(maxsize=None)
def libvirt_plugin_missing() -> str:
    if VAGRANT is None:
        return "vagrant is not installed"
    plugins = subprocess.run([VAGRANT, "plugin", "list"], capture_output=True, text=True,
                             env=dict(os.environ, VAGRANT_CHECKPOINT_DISABLE="1"), timeout=60)
    if "vagrant-libvirt" not in plugins.stdout:
        return "the vagrant-libvirt plugin is not installed (.ci/run installs it with apt-get)"
    return ""


@pytest.fixture(scope="module")
def described(tmp_path_factory):
    """What the Vagrantfile defines for each stack, as it prints it under `vagrant validate`."""
    if VAGRANT is None:
        pytest.skip("vagrant is not installed (.ci/run installs it with apt-get)")
    # With the libvirt plugin this is also the libvirt validation (see below).
    provider = ["--ignore-provider"] if libvirt_plugin_missing() else []
    out = {}
    for stack in STACKS:
        tmp = tmp_path_factory.mktemp(f"describe-{stack}")
        result = validate(tmp, VMS_DIR, *provider, KSERVE_VMS_STACK=stack,
                          KSERVE_VMS_DESCRIBE="1", VAGRANT_DEFAULT_PROVIDER="libvirt")
        assert result.returncode == 0, result.stdout + result.stderr
        line = next(l for l in result.stderr.splitlines() if l.startswith("KSERVE_VMS_MACHINES "))
        out[stack] = json.loads(line.split(" ", 1)[1])
        out[stack]["validate"] = (provider, result.stdout)
    return out


# --- the stack files ------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_files_pass_the_programs_checks_on_a_private_network(stack):
    config = parse_stack_file(stack)
    assert not config.warnings, config.warnings
    roles = sorted(node.role for node in config.nodes)
    assert roles == (["control-plane", "worker", "worker"] if stack == "vms" else ["control-plane"])
    pods = ipaddress.ip_network(stack_file_config(stack)["kubernetes"]["podCidr"])
    for node in config.nodes:
        address = ipaddress.ip_address(node.address)
        assert address in VMS_NETWORK and address not in VIRTUALBOX_NAT, node
        assert address not in pods, f"the pod network {pods} contains {node.address}"
        assert address != ipaddress.ip_address("192.168.56.1"), "the host's own address"


def test_the_two_sets_of_vms_and_the_dev_stack_share_no_name_or_address():
    nodes = [n for stack in (*STACKS, "dev") for n in stack_file_config(stack)["nodes"]]
    assert len({n["name"] for n in nodes}) == len(nodes)
    assert len({n["address"] for n in nodes}) == len(nodes)


@pytest.mark.parametrize("stack", STACKS)
def test_the_plan_of_the_vm_stacks_evaluates(stack):
    plan = plan_stack(stack)
    text = render_text(plan)
    for node in stack_file_config(stack)["nodes"]:
        assert f"{node['name']}  {node['address']}  {node['role']}" in text
        assert f"{node['name']} ({node['address']}):" in text
    scripts = {step.script for step in plan.steps.values()}
    assert {"preflight-facts.sh", "prepare.sh"} <= scripts, scripts
    assert ("join-worker.sh" in scripts) == (stack == "vms"), scripts


# --- the Vagrantfile, as Vagrant evaluates it -------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_the_vagrantfile_makes_exactly_the_stack_files_nodes(described, stack):
    machines = described[stack]["machines"]
    nodes = stack_file_config(stack)["nodes"]
    assert [(m["name"], m["address"], m["role"]) for m in machines] == \
        [(n["name"], n["address"], n["role"]) for n in nodes]
    assert described[stack]["user"] == stack_file_config(stack)["ssh"]["user"]


def test_the_vagrantfile_uses_the_pinned_box(described):
    for stack in STACKS:
        assert described[stack]["box"] == versions.VAGRANT_BOX
        assert described[stack]["box_version"] == versions.VAGRANT_BOX_VERSION
    assert versions.VAGRANT_BOX_VERSION in {pin.version for pin in versions.PINS}


def test_every_vm_has_what_preflight_asks(described):
    for stack in STACKS:
        machines = described[stack]["machines"]
        for machine in machines:
            usable = machine["memory_mb"] - KERNEL_KEEPS_MB
            assert usable >= MIN_CONTROL_PLANE_MEMORY_MB, machine
            if machine["role"] == "control-plane":
                assert machine["cpus"] >= MIN_CONTROL_PLANE_CPUS, machine
        workers = [m for m in machines if m["role"] == "worker"] or machines
        assert sum(m["memory_mb"] - KERNEL_KEEPS_MB for m in workers) >= SERVING_BASELINE_MB, stack
    # The single VM is the README's single-node machine: 4 CPUs and 8 GB.
    (alone,) = described["vm1"]["machines"]
    assert alone["cpus"] >= 4 and alone["memory_mb"] >= 8192


def test_every_vm_has_its_own_hostname_and_macs(described):
    machines = [m for stack in STACKS for m in described[stack]["machines"]]
    macs = [m[card] for m in machines for card in ("nat_mac", "private_mac")]
    assert len(set(macs)) == len(macs), macs
    assert len({m["name"] for m in machines}) == len(machines)
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert first & 0b10 and not first & 0b01, f"{mac}: not a locally administered unicast MAC"


def vagrantfile_copy(tmp_path, edit=None) -> Path:
    """The Vagrantfile and what it reads, copied to tmp_path; `edit` changes the copy."""
    for relative in ("scripts/vms/Vagrantfile", "scripts/vms/sizes.txt", "components/versions.py",
                     "stacks/Pulumi.vms.yaml", "stacks/Pulumi.vm1.yaml"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    vagrantfile = tmp_path / "scripts" / "vms" / "Vagrantfile"
    if edit:
        old, new = edit
        text = vagrantfile.read_text()
        assert old in text
        vagrantfile.write_text(text.replace(old, new))
    return vagrantfile.parent


def fake_vboxmanage(tmp_path) -> dict:
    """A VBoxManage that only tells its version: Vagrant then takes VirtualBox as
    installed and validates the VirtualBox settings with its own provider code."""
    bin_dir = tmp_path / "vbox-bin"
    bin_dir.mkdir()
    (bin_dir / "VBoxManage").write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo 7.0.14r161095; exit 0; fi\nexit 1\n')
    (bin_dir / "VBoxManage").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("stack", STACKS)
def test_vagrant_validates_the_vagrantfile_for_libvirt(described, stack):
    reason = libvirt_plugin_missing()
    if reason:
        pytest.skip(reason)
    ignored, stdout = described[stack]["validate"]
    assert not ignored and "validated successfully" in stdout and "Ignoring" not in stdout
    assert sorted(p.name for p in VMS_DIR.iterdir()) == ["Vagrantfile", "sizes.txt"]


@needs_vagrant
def test_vagrant_validates_the_vagrantfile_for_virtualbox(tmp_path):
    if shutil.which("VBoxManage") is None:
        pytest.skip("VirtualBox is not installed (no VBoxManage on the PATH); Debian has no "
                    "package for it. See the stand-in VBoxManage test below.")
    for stack in STACKS:
        result = validate(tmp_path, VMS_DIR, VAGRANT_DEFAULT_PROVIDER="virtualbox",
                          KSERVE_VMS_STACK=stack)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_vagrant
@pytest.mark.parametrize("stack", STACKS)
def test_vagrant_validates_the_virtualbox_settings_with_a_stand_in_vboxmanage(tmp_path, stack):
    result = validate(tmp_path, VMS_DIR, VAGRANT_DEFAULT_PROVIDER="virtualbox",
                      KSERVE_VMS_STACK=stack, **fake_vboxmanage(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_vagrant
def test_validate_would_catch_a_misspelt_provider_setting(tmp_path):
    """The validations above check each provider's settings, not only Ruby syntax."""
    broken = vagrantfile_copy(tmp_path / "vbox", ('vbox.cpus = ', 'vbox.cpu_count = '))
    result = validate(tmp_path, broken, VAGRANT_DEFAULT_PROVIDER="virtualbox",
                      **fake_vboxmanage(tmp_path))
    assert result.returncode != 0 and "cpu_count" in result.stdout + result.stderr
    if not libvirt_plugin_missing():
        broken = vagrantfile_copy(tmp_path / "libvirt", ('libvirt.memory = ', 'libvirt.memroy = '))
        result = validate(tmp_path, broken, VAGRANT_DEFAULT_PROVIDER="libvirt")
        assert result.returncode != 0 and "memroy" in result.stdout + result.stderr


@needs_vagrant
def test_the_vagrantfile_names_a_stack_file_it_cannot_find(tmp_path):
    result = validate(tmp_path, VMS_DIR, "--ignore-provider", KSERVE_VMS_STACK="no-such-stack")
    assert result.returncode != 0
    assert "no stack file" in result.stderr and "Pulumi.no-such-stack.yaml" in result.stderr


@needs_vagrant
@pytest.mark.skipif(os.geteuid() != 0, reason="already a plain user: the tests above ran as one")
def test_a_plain_user_can_validate():
    """As root the tests above could read and write anything: run one as `nobody` too,
    with its home and Vagrant's state in a directory nobody owns."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*as_nobody, "test", "-r", str(VMS_DIR / "Vagrantfile")]).returncode:
        pytest.skip(f"user nobody cannot read {VMS_DIR} (a private checkout)")
    scratch = Path(tempfile.mkdtemp(prefix="kserve-vms-nobody-"))
    try:
        os.chown(scratch, 65534, 65534)
        env = vagrant_env(scratch, HOME=str(scratch), VAGRANT_DEFAULT_PROVIDER="libvirt")
        if libvirt_plugin_missing():
            (scratch / "vbox").mkdir()
            env.update(fake_vboxmanage(scratch / "vbox"), VAGRANT_DEFAULT_PROVIDER="virtualbox")
        result = subprocess.run([*as_nobody, VAGRANT, "validate"], cwd=VMS_DIR, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "validated successfully" in result.stdout
    finally:
        shutil.rmtree(scratch)


# --- scripts/vms.sh ----------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck is not installed (.ci/run installs it with apt-get)")
def test_shellcheck_passes_on_vms_sh():
    result = subprocess.run(["shellcheck", "--severity=style", str(VMS_SH)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


FAKE_VAGRANT = """#!/bin/sh
printf '%s|stack=%s|key=%s|cwd=%s|state=%s\\n' "$*" "$KSERVE_VMS_STACK" "$KSERVE_VMS_PUBLIC_KEY" \
  "$VAGRANT_CWD" "$VAGRANT_DOTFILE_PATH" >>"$FAKE_VAGRANT_LOG"
if [ "$1 $2" = "plugin list" ]; then printf '%s\\n' "$FAKE_VAGRANT_PLUGINS"; fi
"""


def meminfo(tmp_path, available_mb):
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal: 33554432 kB\nMemAvailable: {available_mb * 1024} kB\n")
    return path


@pytest.fixture
def bench(tmp_path):
    """A stand-in vagrant (it records its calls), a key pair's .pub, enough free memory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vagrant").write_text(FAKE_VAGRANT)
    (bin_dir / "vagrant").chmod(0o755)
    key = tmp_path / "id_test"
    key.write_text("private\n")
    (tmp_path / "id_test.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake test@host\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAGRANT_", "KSERVE_VMS_"))}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", FAKE_VAGRANT_LOG=str(tmp_path / "vagrant.log"),
               FAKE_VAGRANT_PLUGINS="vagrant-libvirt (0.11.2, system)",
               SSH_KEY_FILE=str(key), KSERVE_VMS_MEMINFO=str(meminfo(tmp_path, 64 * 1024)))
    return env, tmp_path


def run_vms(env, *args):
    return subprocess.run(["bash", str(VMS_SH), *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def vagrant_calls(tmp_path):
    log = tmp_path / "vagrant.log"
    return log.read_text().splitlines() if log.exists() else []


def nothing_made(tmp_path):
    assert not [c for c in vagrant_calls(tmp_path) if not c.startswith("plugin list|")]
    assert sorted(p.name for p in VMS_DIR.iterdir()) == ["Vagrantfile", "sizes.txt"]


def test_up_runs_vagrant_on_the_vms_stack_with_the_public_key(bench):
    env, tmp_path = bench
    result = run_vms(env, "up", "--provider", "libvirt")
    assert result.returncode == 0, result.stderr
    (up,) = [c for c in vagrant_calls(tmp_path) if c.startswith("up ")]
    assert up.startswith("up --provider libvirt|stack=vms|")
    assert f"|key={tmp_path / 'id_test.pub'}|" in up and f"|cwd={VMS_DIR}|" in up
    assert f"|state={VMS_DIR / '.vagrant-vms'}" in up
    assert "scripts/preflight.py --stack vms --trust" in result.stdout
    assert "scripts/up.sh vms" in result.stdout


def test_single_makes_the_vm1_stack_and_destroy_and_status_follow(bench):
    env, tmp_path = bench
    assert run_vms(env, "up", "--single", "--provider=libvirt").returncode == 0
    assert run_vms(env, "status", "--single").returncode == 0
    assert run_vms(env, "destroy", "--single").returncode == 0
    calls = [c.split("|")[:2] for c in vagrant_calls(tmp_path) if not c.startswith("plugin")]
    assert calls == [["up --provider libvirt", "stack=vm1"], ["status", "stack=vm1"],
                     ["destroy --force", "stack=vm1"]]


def test_without_vagrant_on_the_path_it_says_how_to_install_it(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "awk", "grep", "sed"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    key = tmp_path / "id_test"
    (tmp_path / "id_test.pub").write_text("ssh-ed25519 AAAA test\n")
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "SSH_KEY_FILE": str(key),
           "KSERVE_VMS_MEMINFO": str(meminfo(tmp_path, 64 * 1024))}
    for command in ("up", "status", "destroy"):
        result = subprocess.run([shutil.which("bash"), str(VMS_SH), command], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert "Vagrant is not installed" in result.stderr and "apt-get install vagrant" in result.stderr
        assert "nothing was done" in result.stderr
    nothing_made(tmp_path)


def test_libvirt_without_the_plugin_is_refused(bench):
    env, tmp_path = bench
    env["FAKE_VAGRANT_PLUGINS"] = "vagrant-vbguest"
    result = run_vms(env, "up", "--provider", "libvirt")
    assert result.returncode == 1
    assert "needs the vagrant-libvirt plugin" in result.stderr
    assert "apt-get install vagrant-libvirt" in result.stderr
    nothing_made(tmp_path)


def test_virtualbox_without_vboxmanage_is_refused(bench):
    env, tmp_path = bench
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not shutil.which("VBoxManage", path=p))
    result = run_vms(env, "up", "--provider", "virtualbox")
    assert result.returncode == 1
    assert "no 'VBoxManage' on the PATH" in result.stderr and "--provider libvirt" in result.stderr
    nothing_made(tmp_path)


def test_bad_input_is_listed_all_at_once_before_anything_is_made(bench, described):
    env, tmp_path = bench
    needed = sum(m["memory_mb"] for m in described["vms"]["machines"])
    env.update(SSH_KEY_FILE=str(tmp_path / "no-such-key"),
               KSERVE_VMS_MEMINFO=str(meminfo(tmp_path, 3000)))
    result = run_vms(env, "up", "--provider", "hyperv")
    assert result.returncode == 1
    problems = [l for l in result.stderr.splitlines() if l.startswith("  - ")]
    assert len(problems) == 3, result.stderr
    assert "unknown provider 'hyperv'" in problems[0] and "--provider libvirt" in problems[0]
    assert f"no public key {tmp_path / 'no-such-key.pub'}" in problems[1]
    assert "ssh-keygen -t ed25519" in problems[1]
    assert f"take {needed} MB" in problems[2] and "only 3000 MB is free" in problems[2]
    assert "scripts/vms.sh up --single" in problems[2]
    nothing_made(tmp_path)


@pytest.mark.parametrize("stack", STACKS)
def test_the_memory_check_counts_what_the_vagrantfile_gives(bench, described, stack):
    """vms.sh and the Vagrantfile read sizes.txt each: they must agree, to the MB."""
    env, tmp_path = bench
    needed = sum(m["memory_mb"] for m in described[stack]["machines"])
    single = ["--single"] if stack == "vm1" else []
    env["KSERVE_VMS_MEMINFO"] = str(meminfo(tmp_path, needed + 1024 - 1))
    short = run_vms(env, "up", "--provider", "libvirt", *single)
    assert short.returncode == 1 and f"take {needed} MB" in short.stderr
    assert ("up --single" in short.stderr) == (stack == "vms")
    nothing_made(tmp_path)
    env["KSERVE_VMS_MEMINFO"] = str(meminfo(tmp_path, needed + 1024))
    enough = run_vms(env, "up", "--provider", "libvirt", *single)
    assert enough.returncode == 0, enough.stderr


def test_a_file_that_is_not_a_public_key_is_refused(bench):
    env, tmp_path = bench
    (tmp_path / "id_test.pub").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    result = run_vms(env, "up", "--provider", "libvirt")
    assert result.returncode == 1 and "does not look like an SSH public key" in result.stderr
    nothing_made(tmp_path)


def test_an_unknown_argument_shows_the_usage(bench):
    env, tmp_path = bench
    result = run_vms(env, "start")
    assert result.returncode == 2 and "unknown argument 'start'" in result.stderr
    assert "scripts/vms.sh up" in result.stderr
    assert run_vms(env).returncode == 2
    nothing_made(tmp_path)
