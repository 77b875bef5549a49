"""Checks that need no upstream files: Calico's IP pool is kubeadm's podSubnet, and
a worker's join token lives 1 h (the program's env through join-token.sh to the
`kubeadm token create` it runs)."""
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from components.cluster.calico import calico_values
from components.cluster.kubeadm_config import render_init_config
from components.offline.program import SECRET_SIG, evaluate
from components.stack_config import DEFAULT_POD_CIDR, parse_stack_config
from components.stack_file import stack_file_config

CUSTOM_POD_CIDR = "10.244.0.0/16"


def lab_config(pod_cidr=None) -> dict:
    config = stack_file_config("lab")
    if pod_cidr:
        config["kubernetes"] = {**config.get("kubernetes", {}), "podCidr": pod_cidr}
    return config


def plain(value):
    """An input as the mock runtime recorded it, a secret unwrapped."""
    if isinstance(value, dict) and SECRET_SIG in value:
        return value["value"]
    return value


def pod_subnet(init_config: str) -> str:
    [cluster] = [d for d in yaml.safe_load_all(init_config) if d["kind"] == "ClusterConfiguration"]
    return cluster["networking"]["podSubnet"]


def pool_cidr(values: dict) -> str:
    [pool] = values["installation"]["calicoNetwork"]["ipPools"]
    return pool["cidr"]


@pytest.mark.parametrize("pod_cidr", [None, CUSTOM_POD_CIDR])
def test_calicos_pool_is_kubeadms_pod_subnet(pod_cidr):
    config = lab_config(pod_cidr)
    settings = parse_stack_config(config, has_secret_private_key=True)
    [control_plane] = [n for n in settings.nodes if n.role == "control-plane"]
    subnet = pod_subnet(render_init_config(control_plane, settings.kubernetes))
    assert subnet == (pod_cidr or DEFAULT_POD_CIDR)
    assert pool_cidr(calico_values(settings.kubernetes)) == subnet


@pytest.mark.parametrize("pod_cidr", [None, CUSTOM_POD_CIDR])
def test_the_program_gives_calico_and_kubeadm_the_same_pod_cidr(pod_cidr):
    """The same, as the program passes them: the tigera-operator release's values and
    the kubeadm init command's config."""
    evaluation = evaluate(lab_config(pod_cidr))
    [release] = [r for r in evaluation.by_type("kubernetes:helm.sh/v3:Release")
                 if plain(r.inputs.get("chart")) == "tigera-operator"]
    [init] = [c for c in evaluation.commands() if c.name.endswith("-kubeadm-init")]
    subnet = pod_subnet(plain(init.inputs["stdin"]))
    assert subnet == (pod_cidr or DEFAULT_POD_CIDR)
    assert pool_cidr(plain(release.inputs["values"])) == subnet


SECONDS = {"h": 3600, "m": 60, "s": 1}


def duration_seconds(text: str) -> float:
    """A Go duration as kubeadm reads --ttl (1h, 60m, 1h0m0s...)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * SECONDS[u] for n, u in parts)


def test_a_workers_join_token_lives_one_hour(tmp_path):
    """Run the join-token command the program declares, with a kubeadm that records
    its arguments, and read the lifetime it asks for."""
    evaluation = evaluate(stack_file_config("lab"))
    commands = [c for c in evaluation.commands() if c.name.endswith("-join-token")]
    assert commands
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "kubeadm-args"
    (bin_dir / "kubeadm").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >{shlex.quote(str(log))}\n')
    (bin_dir / "kubeadm").chmod(0o755)
    for command in commands:
        words = shlex.split(plain(command.inputs["create"]))
        assert words[:2] == ["sudo", "-n"]
        done = subprocess.run(words[2:], env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        args = log.read_text().splitlines()
        assert args[:2] == ["token", "create"], args
        assert args.count("--ttl") == 1, args
        ttl = args[args.index("--ttl") + 1]
        assert duration_seconds(ttl) == 3600, f"{command.name}: --ttl {ttl}"
