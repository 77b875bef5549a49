"""SSH lab: a GPU worker prepared for real by the program's GPU node scripts.

The stand-ins play the NVIDIA side (tests/lab/standins): `lspci` lists the GPUs
planted on the node, the apt catalogue has Ubuntu's nvidia-driver/nvidia-utils
branches and NVIDIA's toolkit repository (served at the pinned key URL, refused
without that keyring), `modprobe nvidia` loads the installed driver unless Secure
Boot refuses its key, `nvidia-smi` answers from the loaded module, and
`nvidia-ctk runtime configure` writes containerd's drop-in and `imports` line.
"""
import tomllib

import pytest

from components import versions
from lab.fixtures import lab_marks, runner_for
from lab.runner import LabRunError

pytestmark = lab_marks

NAMES = ["cp1", "worker1", "gpu1"]
TOOLKIT = versions.NVIDIA_CONTAINER_TOOLKIT_PACKAGES
DRIVER = ("nvidia-driver-580-server", "nvidia-utils-580-server")
DROP_IN = "/etc/containerd/conf.d/99-nvidia.toml"
CRI = "io.containerd.grpc.v1.cri"


def gpu_config(lab, driver="580-server"):
    config = lab.stack_config()
    for entry in config["nodes"]:
        if entry["name"] == "gpu1":
            entry["gpu"] = "nvidia"
    config["gpu"] = {"driver": driver}
    return config


def up(lab, runner, config):
    return runner.up(config, lab.key.private_openssh)


def merged(into, extra):
    """containerd 1.7's merge of an imported file: tables key by key."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merged(into[key], value)
        elif key not in ("version", "imports"):
            into[key] = value
    return into


def first_call(node, tool, *words):
    calls = node.calls_matching(tool, *words)
    assert calls, (node.name, tool, words)
    return calls[0].time


def test_a_gpu_worker_gets_driver_toolkit_and_runtime_before_it_joins(lab):
    cp, worker1, gpu1 = lab.start(NAMES)
    gpu1.plant_gpus(2)
    runner = runner_for(lab)
    up(lab, runner, gpu_config(lab))

    # Preflight counted the GPUs (lspci -n, vendor 10de; the audio functions are not GPUs).
    facts = next(r for r in runner.transcript if r.resource == "gpu1-preflight").stdout
    assert "gpu_devices=2" in facts.splitlines() and "nvidia_driver=absent" in facts.splitlines()

    # The packages: the driver branch from Ubuntu's archive, the toolkit at the pin from
    # NVIDIA's repository, all held.
    packages = gpu1.packages()
    for name in TOOLKIT:
        assert packages[name] == versions.NVIDIA_CONTAINER_TOOLKIT_VERSION, (name, packages)
    assert set(DRIVER) <= set(packages)
    assert gpu1.held() >= {*DRIVER, *TOOLKIT}
    driver_version = packages["nvidia-driver-580-server"].split("-")[0]
    assert gpu1.nvidia_module() == driver_version
    driver_run = next(r for r in runner.transcript if r.resource == "gpu1-gpu-driver")
    assert f"[gpu-driver] driver {driver_version} loaded" in driver_run.stdout

    # The order on the GPU node: prepare (containerd) -> driver -> toolkit -> nvidia-ctk
    # -> containerd restart -> join.
    prepared = first_call(gpu1, "apt-get", "install")  # containerd.io and kubeadm
    driver = first_call(gpu1, "apt-get", "nvidia-driver-580-server")
    toolkit = first_call(gpu1, "apt-get", f"nvidia-container-toolkit={versions.NVIDIA_CONTAINER_TOOLKIT_VERSION}")
    configure = first_call(gpu1, "nvidia-ctk", "runtime", "configure")
    restart = gpu1.calls_matching("systemctl", "restart", "containerd")[-1].time
    join = first_call(gpu1, "kubeadm", "join")
    assert prepared < driver < toolkit < configure < restart < join
    assert gpu1.calls_matching("gpg", "--dearmor")  # NVIDIA's key, fetched with curl
    assert gpu1.calls_matching("curl", "-fsSL", versions.NVIDIA_CONTAINER_TOOLKIT_GPGKEY_URL)

    # containerd's config, read back with a TOML parser: config.toml imports the
    # drop-in directory, the drop-in has the nvidia runtime with runc's options
    # (SystemdCgroup kept) and nvidia-container-runtime as its binary.
    top = tomllib.loads(gpu1.read("/etc/containerd/config.toml"))
    assert top["imports"] == ["/etc/containerd/conf.d/*.toml"]
    drop_in = tomllib.loads(gpu1.read(DROP_IN))
    assert drop_in["version"] == 2
    nvidia = drop_in["plugins"][CRI]["containerd"]["runtimes"]["nvidia"]
    assert nvidia["runtime_type"] == "io.containerd.runc.v2"
    assert nvidia["options"]["BinaryName"] == "/usr/bin/nvidia-container-runtime"
    assert nvidia["options"]["SystemdCgroup"] is True
    effective = merged(top, drop_in)["plugins"][CRI]
    assert effective["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert effective["containerd"]["runtimes"]["nvidia"]["options"]["SystemdCgroup"] is True
    assert effective["sandbox_image"] == versions.PAUSE_IMAGE
    assert "default_runtime_name" not in drop_in["plugins"][CRI]["containerd"]  # runc stays the default
    assert "containerd" in gpu1.services("active")

    # The other nodes have no GPU step.
    for node in (cp, worker1):
        assert node.calls("nvidia-ctk") == [] and node.calls("lspci") == [], node.name
        assert not any(name.startswith(("nvidia", "libnvidia")) for name in node.packages()), node.name
    assert sorted(lab.cluster()["nodes"]) == sorted(NAMES)

    # Every GPU step run again changes nothing (and does not restart containerd) ...
    before = gpu1.snapshot()
    restarts = gpu1.restarts("containerd")
    runner.rerun_creates()
    assert {"gpu1-gpu-driver", "gpu1-gpu-toolkit", "gpu1-gpu-runtime"} <= {r.resource for r in runner.last_run}
    after = gpu1.snapshot()
    assert sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)) == []
    assert gpu1.restarts("containerd") == restarts
    # ... and a second `up` runs nothing at all on any node.
    calls = len(gpu1.calls())
    up(lab, runner, gpu_config(lab))
    assert runner.last_run == []
    assert len(gpu1.calls()) == calls


def test_secure_boot_stops_the_driver_step_until_the_key_is_enrolled_and_the_node_rebooted(lab):
    cp, worker1, gpu1 = lab.start(NAMES)
    gpu1.plant_gpus(1)
    gpu1.set_secure_boot("enabled")
    runner = runner_for(lab)
    with pytest.raises(LabRunError) as raised:
        up(lab, runner, gpu_config(lab))
    [failure] = raised.value.failures
    assert (failure.resource, failure.node) == ("gpu1-gpu-driver", "gpu1")
    assert "the node must be rebooted" in failure.detail
    # modprobe was refused (the DKMS key is not enrolled): no module, nothing after the driver.
    assert gpu1.calls_matching("modprobe", "nvidia") and gpu1.nvidia_module() is None
    assert gpu1.calls("nvidia-ctk") == [] and gpu1.calls_matching("kubeadm", "join") == []
    assert "nvidia-container-toolkit" not in gpu1.packages()

    # The operator enrolls the key and reboots: the module loads at boot, and the next
    # `up` goes on from the driver step.
    gpu1.run("touch /var/lib/lab/mok-enrolled")
    gpu1.reboot()
    up(lab, runner, gpu_config(lab))
    assert gpu1.nvidia_module() == gpu1.packages()["nvidia-driver-580-server"].split("-")[0]
    assert len(gpu1.calls_matching("kubeadm", "join")) == 1
    assert sorted(lab.cluster()["nodes"]) == sorted(NAMES)


def refused(lab, runner, config) -> str:
    with pytest.raises(LabRunError) as raised:
        up(lab, runner, config)
    return str(raised.value)


def test_preinstalled_driver_without_nvidia_smi_is_refused_by_preflight(lab):
    nodes = lab.start(NAMES)
    nodes[2].plant_gpus(1)
    runner = runner_for(lab)
    message = refused(lab, runner, gpu_config(lab, driver="preinstalled"))
    assert "gpu.driver is preinstalled, but nvidia-smi is not installed" in message
    # The preflight gate: nothing was changed on any node.
    for node in nodes:
        assert node.calls("apt-get") == [] and node.packages().get("kubeadm") is None, node.name


def test_a_gpu_node_without_an_nvidia_device_is_refused_by_preflight(lab):
    nodes = lab.start(NAMES)  # gpu1 has the VM's own display controller, not an NVIDIA one
    runner = runner_for(lab)
    message = refused(lab, runner, gpu_config(lab))
    assert "no NVIDIA GPU on this node" in message
    facts = next(r for r in runner.transcript if r.resource == "gpu1-preflight").stdout
    assert "gpu_devices=0" in facts.splitlines()
    for node in nodes:
        assert node.calls("apt-get") == [], node.name


def test_the_gpu_stand_ins_refuse_what_the_real_tools_refuse(lab):
    (node,) = lab.start(["gpu1"])
    node.plant_gpus(1)

    def run(command):
        return node.run(command, check=False)

    # lspci -n: the planted GPU (class 0302, vendor 10de), its audio function, the VM's VGA.
    listed = run("lspci -n").stdout.splitlines()
    assert "01:00.0 0302: 10de:20b5 (rev a1)" in listed and "00:02.0 0300: 1234:1111 (rev 02)" in listed
    assert run("lspci -k").returncode != 0
    assert run("mokutil --sb-state").stdout.strip() == "SecureBoot disabled"
    node.set_secure_boot("bios")
    bios = run("mokutil --sb-state")
    assert bios.returncode == 1 and "EFI variables are not supported" in bios.stderr
    node.set_secure_boot("disabled")

    # No driver yet: no nvidia-smi, and no module to load.
    assert run("command -v nvidia-smi").returncode != 0
    missing = run("modprobe nvidia")
    assert missing.returncode == 1 and "Module nvidia not found" in missing.stderr

    # NVIDIA's repository without its keyring: apt refuses it (NO_PUBKEY), with it the
    # pinned toolkit installs.
    source = (f"deb [signed-by=/etc/apt/keyrings/nvidia-container-toolkit.gpg] "
              f"{versions.NVIDIA_CONTAINER_TOOLKIT_APT_REPO}$(ARCH) /")
    node.run(f"mkdir -p /etc/apt/sources.list.d && echo '{source}' > /etc/apt/sources.list.d/nvidia.list")
    unsigned = run("apt-get update")
    assert unsigned.returncode == 100 and "NO_PUBKEY" in unsigned.stderr
    node.run(f"install -d /etc/apt/keyrings && curl -fsSL {versions.NVIDIA_CONTAINER_TOOLKIT_GPGKEY_URL} "
             "| gpg --dearmor -o /etc/apt/keyrings/nvidia-container-toolkit.gpg && apt-get update")
    assert run("apt-cache show nvidia-container-toolkit=0.0.1-1").returncode == 100
    pinned = " ".join(f"{p}={versions.NVIDIA_CONTAINER_TOOLKIT_VERSION}" for p in TOOLKIT)
    node.run(f"apt-get install -y {pinned}")
    # nvidia-ctk: other runtimes and unknown flags are refused.
    assert run("nvidia-ctk runtime configure --runtime=docker").returncode != 0
    assert "flag provided but not defined" in run("nvidia-ctk runtime configure --runtme=containerd").stderr

    # The driver installed but not loaded: nvidia-smi fails as the real one does (on stdout).
    node.run("apt-get install -y nvidia-driver-580-server")
    unloaded = run("nvidia-smi --query-gpu=driver_version --format=csv,noheader")
    assert unloaded.returncode == 9
    assert unloaded.stdout.startswith("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver")
    node.run("modprobe nvidia")
    loaded = node.run("nvidia-smi --query-gpu=driver_version,name --format=csv,noheader").stdout
    assert loaded == f"{node.nvidia_module()}, NVIDIA Corporation GA100 [A100 PCIe 80GB]\n"
    assert run("nvidia-smi --query-gpu=fan_speedd --format=csv").returncode == 2
    # Another branch installed under the running module: driver/library mismatch until a reboot.
    node.run("apt-get install -y nvidia-driver-570-server")  # brings nvidia-utils-570-server
    node.run("sed -i '/580-server/d' /var/lib/lab/dpkg/installed")  # the old branch removed
    mismatch = run("nvidia-smi --query-gpu=driver_version --format=csv,noheader")
    assert mismatch.returncode == 18 and "Driver/library version mismatch" in mismatch.stdout
    node.reboot()
    assert node.nvidia_module().startswith("570.")
    assert run("nvidia-smi --query-gpu=driver_version --format=csv,noheader").returncode == 0
