"""Where tests find upstream files (components/upstream.py), and scripts/fetch_upstream.py,
which fills that place: tested offline, with stand-in helms on PATH."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from components import upstream, versions
from components.offline.releases import ALL_VARIANTS, declared_charts, declared_releases
from components.upstream import ChartRef

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "fetch_upstream.py"

# What the program pins (components/versions.py), as (chart, version): the fetch
# list must hold at least these.
PINNED_CHARTS = {
    (versions.CALICO_CHART, versions.CALICO_VERSION),
    ("cert-manager", versions.CERT_MANAGER_VERSION),
    ("base", versions.ISTIO_VERSION),
    ("istiod", versions.ISTIO_VERSION),
    ("gateway", versions.ISTIO_VERSION),
    (versions.KSERVE_CRD_CHART, versions.KSERVE_VERSION),
    (versions.KSERVE_CHART, versions.KSERVE_VERSION),
}

# helm stand-ins: `version` answers like helm 3; `pull` fails, or unpacks a tiny
# chart named after the reference and logs what it was asked for.
FAILING_HELM = """#!/bin/sh
[ "$1" = version ] && { echo v3.17.3+gstandin; exit 0; }
echo 'Error: failed to fetch chart: dial tcp: lookup charts.example: no such host' >&2
exit 1
"""
PULLING_HELM = """#!/bin/sh
[ "$1" = version ] && { echo v3.17.3+gstandin; exit 0; }
[ "$1" = pull ] || exit 2
chart=$2; shift 2; repo=-
while [ $# -gt 0 ]; do
  case "$1" in --version) version=$2; shift ;; --untardir) dir=$2; shift ;; --repo) repo=$2; shift ;; esac
  shift
done
name=${chart##*/}
mkdir -p "$dir/$name"
printf 'name: %s\\nversion: %s\\n' "$name" "$version" >"$dir/$name/Chart.yaml"
echo "$chart $version $repo" >>"$HELM_LOG"
"""


def stand_in(tmp_path: Path, text: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(text)
    helm.chmod(0o755)
    return bin_dir


def pointing_at(monkeypatch, path: Path):
    monkeypatch.setenv(upstream.ENV, str(path))


# --- where the files are ------------------------------------------------------------

def test_the_environment_variable_comes_first(monkeypatch, tmp_path):
    pointing_at(monkeypatch, tmp_path)
    assert upstream.upstream_dir().path == tmp_path


def test_a_missing_override_is_named_not_replaced(monkeypatch, tmp_path):
    pointing_at(monkeypatch, tmp_path / "nowhere")
    found = upstream.upstream_dir()
    assert not found and f"{upstream.ENV}={tmp_path / 'nowhere'}" in found.reason


def test_the_projects_own_directory_before_the_shared_one(monkeypatch, tmp_path):
    monkeypatch.delenv(upstream.ENV, raising=False)
    own, shared = tmp_path / "own", tmp_path / "shared"
    monkeypatch.setattr(upstream, "PROJECT_DIR", own)
    monkeypatch.setattr(upstream, "SHARED_DIR", shared)
    shared.mkdir()
    (shared / "README.md").write_text("x")
    own.mkdir()
    # An empty .upstream/ (a fetch that got nothing) does not hide the shared copy.
    assert upstream.upstream_dir().path == shared
    (own / "charts").mkdir()
    assert upstream.upstream_dir().path == own


def test_no_directory_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.delenv(upstream.ENV, raising=False)
    monkeypatch.setattr(upstream, "PROJECT_DIR", tmp_path / "own")
    monkeypatch.setattr(upstream, "SHARED_DIR", tmp_path / "shared")
    found = upstream.upstream_dir()
    assert not found and "scripts/fetch_upstream.py" in found.reason


def test_chart_places_follow_the_shared_layout():
    kserve = ChartRef(versions.KSERVE_CHART, versions.KSERVE_VERSION)
    istiod = ChartRef("istiod", versions.ISTIO_VERSION, versions.ISTIO_CHART_REPO)
    assert upstream.chart_subdir(kserve) == Path(f"charts/kserve-{versions.KSERVE_VERSION}/kserve-resources")
    assert upstream.chart_subdir(istiod) == \
        Path(f"charts/istio-{versions.ISTIO_VERSION}-charts/istio-control/istio-discovery")
    # A chart nobody mapped gets <name>-<version>/<name>.
    other = ChartRef("local-path-provisioner", "0.0.31", "https://charts.example.org")
    assert upstream.chart_subdir(other) == Path("charts/local-path-provisioner-0.0.31/local-path-provisioner")


def test_an_absent_chart_is_reported_by_name(monkeypatch, tmp_path):
    pointing_at(monkeypatch, tmp_path)
    ref = ChartRef("oci://registry.example.org/charts/kube-prometheus-stack", "70.4.2")
    found = upstream.chart_source(ref)
    assert not found
    assert "oci://registry.example.org/charts/kube-prometheus-stack 70.4.2" in found.reason
    assert str(tmp_path / "charts/kube-prometheus-stack-70.4.2/kube-prometheus-stack") in found.reason
    target = tmp_path / upstream.chart_subdir(ref)
    target.mkdir(parents=True)
    (target / "Chart.yaml").write_text("name: kube-prometheus-stack\n")
    assert upstream.chart_source(ref).path == target


def test_missing_crd_files_are_named(monkeypatch, tmp_path):
    pointing_at(monkeypatch, tmp_path)
    crds = tmp_path / f"kserve-{versions.KSERVE_VERSION}"
    crds.mkdir()
    (crds / "inferenceservices.yaml").write_text("{}")
    found = upstream.kserve_crds_dir()
    assert not found and "servingruntimes.yaml" in found.reason
    assert "inferenceservices.yaml" not in found.reason


def test_crd_urls_are_at_the_pinned_tag():
    assert set(versions.KSERVE_CRD_URLS) == {
        "inferenceservices.yaml", "servingruntimes.yaml", "clusterservingruntimes.yaml"}
    for name, url in versions.KSERVE_CRD_URLS.items():
        assert url.startswith(f"https://raw.githubusercontent.com/kserve/kserve/{versions.KSERVE_VERSION}/")
        assert url.endswith(f"serving.kserve.io_{name}")


def test_a_broken_helm_is_passed_over_with_the_reason(monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "helm").write_text("#!/bin/sh\necho 'helm: cannot run' >&2\nexit 127\n")
    (bin_dir / "helm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(upstream, "SHARED_TOOLS", tmp_path / "no-tools")
    found = upstream.helm()
    assert not found and "helm: cannot run" in found.reason


# --- scripts/fetch_upstream.py ---------------------------------------------------------

def run_script(*args, env_extra):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_the_fetch_list_is_the_programs_releases(tmp_path):
    result = run_script("--list", env_extra={upstream.ENV: str(tmp_path)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    charts = declared_charts(declared_releases(ALL_VARIANTS))  # every train's
    for ref in charts:
        assert f"chart {ref.label} -> {tmp_path / upstream.chart_subdir(ref)}" in lines
    assert PINNED_CHARTS <= {(ref.chart, ref.version) for ref in charts}
    for name, url in versions.KSERVE_CRD_URLS.items():
        assert f"file {url} -> {tmp_path / upstream.crd_subdir(name)}" in lines
    assert f"file {versions.LOCAL_PATH_PROVISIONER_MANIFEST_URL} -> " \
        f"{tmp_path / upstream.LOCAL_PATH_MANIFEST}" in lines
    assert len(lines) == len(charts) + len(upstream.pinned_files())
    assert not any(tmp_path.iterdir()), "--list fetches nothing"
    # The mock nodes are fit for every variant: no preflight warning from made-up facts.
    assert "WARN" not in result.stderr, result.stderr


def test_the_fetch_list_can_be_one_trains(tmp_path):
    result = run_script("--list", "--train", "1.35", env_extra={upstream.ENV: str(tmp_path)})
    assert result.returncode == 0, result.stderr
    train = versions.TRAINS["1.35"]
    listed = [line for line in result.stdout.splitlines() if line.startswith("chart ")]
    assert f"chart {versions.CALICO_CHART_REPO} {versions.CALICO_CRDS_CHART} {train.calico_version} -> " \
        f"{tmp_path}/charts/calico-{train.calico_version}/{versions.CALICO_CRDS_CHART}" in listed
    assert any(f"{train.kserve_runtimes_chart} {train.kserve_version} -> " in line for line in listed)
    # Charts every train shares (monitoring, storage) are listed, no other train's versions.
    assert not any(versions.CALICO_VERSION in line or versions.KSERVE_VERSION in line
                   for line in listed), listed


def test_failed_downloads_give_a_clear_message_and_no_traceback(tmp_path):
    bin_dir = stand_in(tmp_path, FAILING_HELM)
    dest = tmp_path / "upstream"
    result = run_script(env_extra={
        "PATH": f"{bin_dir}:{os.environ['PATH']}", upstream.ENV: str(dest),
        # No network for the CRD downloads either: a proxy nobody listens on.
        "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "could not fetch chart oci://ghcr.io/kserve/charts/kserve " in result.stderr
    assert "helm pull failed: Error: failed to fetch chart" in result.stderr
    assert "could not fetch https://raw.githubusercontent.com/kserve/kserve/" in result.stderr
    assert "downloads failed" in result.stderr and "run it again" in result.stderr
    # Nothing half-made is left to be mistaken for upstream files.
    assert not dest.exists()


def test_no_helm_at_all_is_reported(tmp_path, monkeypatch, capsys):
    fetch = load_script()
    monkeypatch.setattr(upstream, "helm", lambda: upstream.Found(None, "no helm: none on PATH"))
    monkeypatch.setattr(upstream, "download", lambda url, target: None)
    assert fetch.main(["--dest", str(tmp_path / "up")]) == 1
    err = capsys.readouterr().err
    assert f"could not fetch chart {versions.KSERVE_CHART} {versions.KSERVE_VERSION}: no helm" in err


def load_script():
    spec = importlib.util.spec_from_file_location("fetch_upstream_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not __main__: no venv set-up or re-execution
    return module


def test_fetched_files_land_where_the_tests_look(tmp_path, monkeypatch, capsys):
    bin_dir = stand_in(tmp_path, PULLING_HELM)
    log = tmp_path / "helm.log"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("HELM_LOG", str(log))
    # The CRD downloads come from local files (file:// URLs) instead of GitHub.
    sources = {}
    for name in versions.KSERVE_CRD_URLS:
        source = tmp_path / "crd-source" / name
        source.parent.mkdir(exist_ok=True)
        source.write_text(f"kind: CustomResourceDefinition # {name}\n")
        sources[name] = source.as_uri()
    monkeypatch.setattr(versions, "KSERVE_CRD_URLS", sources)
    manifest = tmp_path / "local-path-storage.yaml"
    manifest.write_text("kind: StorageClass\n")
    monkeypatch.setattr(versions, "LOCAL_PATH_PROVISIONER_MANIFEST_URL", manifest.as_uri())
    dest = tmp_path / "upstream"
    pointing_at(monkeypatch, dest)

    assert load_script().main([]) == 0, capsys.readouterr().err
    charts = declared_charts(declared_releases(ALL_VARIANTS))  # every train's
    pulled = log.read_text().splitlines()
    assert sorted(pulled) == sorted(f"{r.chart} {r.version} {r.repo or '-'}" for r in charts)
    for ref in charts:
        assert upstream.chart_source(ref).path == dest / upstream.chart_subdir(ref)
    assert upstream.kserve_crds_dir().path == dest / f"kserve-{versions.KSERVE_VERSION}"
    assert (dest / upstream.LOCAL_PATH_MANIFEST).read_text() == "kind: StorageClass\n"
    # Safe to run twice: the second run replaces the first copy.
    assert load_script().main([]) == 0
    assert len(log.read_text().splitlines()) == 2 * len(charts)
    assert not list(dest.rglob("*.old")) and not list(dest.rglob(".pull-*"))


# --- .ci/run puts the shared tools on PATH, after any helm already there -------------------

def ci_run_in_copy(tmp_path: Path, extra_bin: str = "") -> str:
    """.ci/run in a copy of the tree whose scripts/test.sh reports which helm it sees."""
    repo, tools, fake = tmp_path / "repo", tmp_path / "shared" / "tools", tmp_path / "fakebin"
    for directory in (repo / ".ci", repo / "scripts", tools, fake):
        directory.mkdir(parents=True)
    (repo / ".ci" / "run").write_text((ROOT / ".ci" / "run").read_text())
    (repo / "scripts" / "test.sh").write_text('#!/bin/sh\ncommand -v helm\n')
    (tools / "helm").write_text("#!/bin/sh\n")
    # Not root here, so that .ci/run installs nothing.
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")
    for path in ((repo / ".ci" / "run"), repo / "scripts" / "test.sh", tools / "helm", fake / "id"):
        path.chmod(0o755)
    path = ":".join(p for p in (str(fake), extra_bin, "/usr/bin", "/bin") if p)
    result = subprocess.run([str(repo / ".ci" / "run")], capture_output=True, text=True,
                            env={"PATH": path, "HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_ci_uses_the_shared_helm_when_none_is_installed(tmp_path):
    assert ci_run_in_copy(tmp_path) == str(tmp_path / "shared" / "tools" / "helm")


def test_ci_prefers_a_helm_already_on_path(tmp_path):
    own = tmp_path / "ownbin"
    own.mkdir()
    (own / "helm").write_text("#!/bin/sh\n")
    (own / "helm").chmod(0o755)
    assert ci_run_in_copy(tmp_path, extra_bin=str(own)) == str(own / "helm")
