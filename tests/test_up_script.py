"""scripts/up.sh, the README's main command, against a stand-in `pulumi` CLI.

The real CLI cannot be downloaded where this is built; the stand-in records the
calls, the environment and the standard input the script gives it.
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAKE_PULUMI = """#!/usr/bin/env bash
{ printf 'ARGS %s\\n' "$*"
  printf 'BACKEND %s\\n' "$PULUMI_BACKEND_URL"
  printf 'PASSPHRASE-SET %s\\n' "${PULUMI_CONFIG_PASSPHRASE:+yes}"
  if [ "$1 $2" = "config set" ]; then printf 'STDIN %s\\n' "$(cat | head -c 40)"; fi
} >>"$FAKE_PULUMI_LOG"
"""


@pytest.fixture
def fake_cli(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(FAKE_PULUMI)
    (bin_dir / "pulumi").chmod(0o755)
    log = tmp_path / "pulumi.log"
    key = tmp_path / "id_test"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", FAKE_PULUMI_LOG=str(log),
               PULUMI_CONFIG_PASSPHRASE="not-a-real-one", SSH_KEY_FILE=str(key))
    return env, log


def run_up(env, *args):
    return subprocess.run(["bash", str(ROOT / "scripts" / "up.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def test_up_selects_the_stack_stores_the_key_and_runs_pulumi_up(fake_cli):
    env, log = fake_cli
    result = run_up(env, "lab", "--yes")
    assert result.returncode == 0, result.stderr
    lines = log.read_text().splitlines()
    args = [line.removeprefix("ARGS ") for line in lines if line.startswith("ARGS ")]
    assert args == ["stack select --create lab --non-interactive",
                    "config set sshPrivateKey --secret --stack lab --",
                    "up --stack lab --yes"]
    # The local file backend by default: no Pulumi account.
    assert {line for line in lines if line.startswith("BACKEND ")} == \
        {f"BACKEND file://{ROOT}/.pulumi-state"}
    assert "STDIN -----BEGIN OPENSSH PRIVATE KEY-----" in lines
    assert "fake" not in result.stdout + result.stderr  # the key is never echoed
    assert (ROOT / "venv" / "bin" / "python").exists()


def test_a_backend_given_by_the_user_is_kept(fake_cli):
    env, log = fake_cli
    env["PULUMI_BACKEND_URL"] = "s3://team-state"
    assert run_up(env, "lab").returncode == 0
    assert "BACKEND s3://team-state" in log.read_text()


def test_unknown_stack_is_refused_before_anything_runs(fake_cli):
    env, log = fake_cli
    result = run_up(env, "nosuchstack")
    assert result.returncode == 1
    assert "No stack file stacks/Pulumi.nosuchstack.yaml" in result.stderr
    assert not log.exists()


def test_missing_cli_is_named(fake_cli, tmp_path):
    env, _ = fake_cli
    env["PATH"] = "/usr/bin:/bin"
    result = run_up(env, "lab")
    assert result.returncode == 1 and "The Pulumi CLI is not installed" in result.stderr
