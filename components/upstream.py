"""Where tests find upstream files: the pinned charts' sources and KServe's CRDs.

Nothing here is part of the project: the files come from upstream releases and
are never committed. One directory holds them, laid out as

    charts/<project>-<version>/<chart>      a chart's source (helm pull --untar)
    kserve-<version>/<plural>.yaml          KServe's CustomResourceDefinitions

It is, in order: the directory named by $KSERVE_CLUSTER_UPSTREAM; the project's
own `.upstream/` (git-ignored) when it holds anything, which
`scripts/fetch_upstream.py` fills on a machine with internet; `../shared/upstream`
beside the repository. $KSERVE_CLUSTER_UPSTREAM may name several directories,
separated by ':' (e.g. a local export of the newer release trains' charts, then
../shared/upstream for the default train's): a chart or file is taken from the
first of them that holds it. Every lookup answers with a path, or with None and the
reason, for tests to skip with. The helm that renders and fetches the charts is
found here too.

KSERVE_UPSTREAM_REQUIRED=1 says "the upstream files can be had here" (CI after
the fetch, .ci/run beside ../shared/upstream): a test whose source is missing then
fails instead of being skipped, if that source is one of EXPECTED, the sources
../shared/upstream holds (its README). A source outside EXPECTED (a newly added
pin or chart the shared folder does not list yet) still skips, with its reason
naming where it comes from; `verdict` decides.
"""
from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from components import versions

ROOT = Path(__file__).resolve().parents[1]
ENV = "KSERVE_CLUSTER_UPSTREAM"
PROJECT_DIR = ROOT / ".upstream"
SHARED_DIR = ROOT.parent / "shared" / "upstream"
SHARED_TOOLS = ROOT.parent / "shared" / "tools"
FETCH_COMMAND = "scripts/fetch_upstream.py"
REQUIRED_ENV = "KSERVE_UPSTREAM_REQUIRED"

# What ../shared/upstream holds, as places under the upstream directory: with
# KSERVE_UPSTREAM_REQUIRED=1 each of these must be found. Listed in a data file, not
# derived from components/versions.py, so that a pin bump's new source (not in the
# shared folder yet) skips with its reason instead of failing.
EXPECTED = frozenset(
    line.strip() for line in (Path(__file__).with_name("upstream_sources.txt")).read_text().splitlines()
    if line.strip() and not line.startswith("#"))

# Where a chart's source goes under charts/, for charts whose published name or
# place differs from <name>-<version>/<name>: keyed by (repository, chart) as a
# helm.v3.Release names them (repository None for an oci:// reference).
_CHART_DIRS = {
    (versions.CALICO_CHART_REPO, versions.CALICO_CHART): "calico-{version}/tigera-operator",
    (versions.CALICO_CHART_REPO, versions.CALICO_CRDS_CHART):
        "calico-{version}/" + versions.CALICO_CRDS_CHART,
    (versions.CERT_MANAGER_CHART_REPO, "cert-manager"): "cert-manager-{version}/cert-manager",
    (versions.ISTIO_CHART_REPO, "base"): "istio-{version}-charts/base",
    (versions.ISTIO_CHART_REPO, "istiod"): "istio-{version}-charts/istio-control/istio-discovery",
    (versions.ISTIO_CHART_REPO, "gateway"): "istio-{version}-charts/gateway",
    (None, versions.KSERVE_CRD_CHART): "kserve-{version}/kserve-crd",
    # Published as `kserve` up to v0.16; its source in the kserve repository is
    # charts/kserve-resources, the name it is published under from v0.17.
    (None, versions.KSERVE_CHART): "kserve-{version}/kserve-resources",
    (None, f"{versions.KSERVE_CHARTS}/kserve-resources"): "kserve-{version}/kserve-resources",
    (None, f"{versions.KSERVE_CHARTS}/kserve-runtime-configs"):
        "kserve-{version}/kserve-runtime-configs",
}

# Where a chart's source lives upstream, for charts not yet in ../shared/upstream:
# the skip reason names it, so that it can be added there.
_CHART_SOURCES = {
    (versions.NVIDIA_DEVICE_PLUGIN_CHART_REPO, versions.NVIDIA_DEVICE_PLUGIN_CHART):
        "repository {0}, tag {1}, path {2}".format(*versions.NVIDIA_DEVICE_PLUGIN_SOURCE),
    (versions.DCGM_EXPORTER_CHART_REPO, versions.DCGM_EXPORTER_CHART):
        "repository {0}, tag {1}, path {2}".format(*versions.DCGM_EXPORTER_SOURCE),
}


@dataclass(frozen=True)
class Found:
    """A path, or None and why not (for a skip message). `expected`: whether the
    missing thing is one KSERVE_UPSTREAM_REQUIRED=1 requires (see EXPECTED)."""
    path: Optional[Path]
    reason: str = ""
    expected: bool = True

    def __bool__(self) -> bool:
        return self.path is not None


def required() -> bool:
    """KSERVE_UPSTREAM_REQUIRED=1: the expected upstream files can be had here."""
    return os.environ.get(REQUIRED_ENV) == "1"


def verdict(found: Found, is_required: bool) -> str:
    """What a test that needs `found` does: "run", "skip" (with found.reason) or "fail"."""
    if found:
        return "run"
    return "fail" if is_required and found.expected else "skip"


def _is_expected(place: Path) -> bool:
    """Whether `place` is one of EXPECTED or inside one."""
    return any(p.as_posix() in EXPECTED for p in (place, *place.parents))


def _not_expected_note(place: Path) -> str:
    return (f"; {place.as_posix()} is not one of the sources ../shared/upstream holds "
            f"(components/upstream.py EXPECTED), so it skips even with {REQUIRED_ENV}=1")


def _first_holding(place: Path, holds) -> tuple[Optional[Path], list[Path], str]:
    """The first upstream directory whose `place` satisfies `holds`: (path or None, every
    path looked at, the reason there is no upstream directory at all)."""
    bases = upstream_dirs()
    if not bases:
        return None, [], bases.reason
    looked = [base / place for base in bases.paths]
    return next((path for path in looked if holds(path)), None), looked, ""


def _places(looked: list[Path]) -> str:
    return " nor ".join(str(path) for path in looked)


def source(place: Path, what: str) -> Found:
    """A file or directory under the upstream directory, e.g. a release manifest; `what`
    names it in the reason (project, tag and path upstream)."""
    path, looked, reason = _first_holding(place, Path.exists)
    if reason:
        return Found(None, f"{what}: {reason}")
    if path is None:
        expected = _is_expected(place)
        note = "" if expected else _not_expected_note(place)
        return Found(None, f"{what}: not in {_places(looked)} (run {FETCH_COMMAND} to fetch it){note}",
                     expected=expected)
    return Found(path)


@dataclass(frozen=True)
class ChartRef:
    """A chart as a helm.v3.Release names it."""
    chart: str                  # name in the repository, or an oci:// reference
    version: str
    repo: Optional[str] = None  # the repository URL; None for oci://

    @property
    def name(self) -> str:
        return self.chart.rstrip("/").rsplit("/", 1)[-1]

    @property
    def label(self) -> str:
        where = self.chart if self.chart.startswith("oci://") else f"{self.repo} {self.chart}"
        return f"{where} {self.version}"


@dataclass(frozen=True)
class Dirs:
    """The upstream directories to look in, in order, or none and why."""
    paths: tuple[Path, ...]
    reason: str = ""

    def __bool__(self) -> bool:
        return bool(self.paths)


def upstream_dirs() -> Dirs:
    """Every upstream directory $KSERVE_CLUSTER_UPSTREAM names (':'-separated), else the
    project's own or the shared one; none, with where it was looked for, if one named is
    missing (it is named, not silently replaced) or there is none."""
    override = os.environ.get(ENV)
    if override:
        paths = [Path(part).expanduser() for part in override.split(os.pathsep) if part]
        missing = [str(path) for path in paths if not path.is_dir()]
        if missing or not paths:
            return Dirs((), f"{ENV}={override}: {', '.join(missing) or override} is not a directory")
        return Dirs(tuple(paths))
    for path in (PROJECT_DIR, SHARED_DIR):
        # An empty .upstream/ (a fetch that got nothing) must not hide ../shared/upstream.
        if path.is_dir() and any(path.iterdir()):
            return Dirs((path,))
    return Dirs((), f"no upstream files: neither {PROJECT_DIR} nor {SHARED_DIR} exists "
                    f"(run {FETCH_COMMAND} on a machine with internet, or set {ENV})")


def upstream_dir() -> Found:
    """The first upstream directory, or None with where it was looked for."""
    dirs = upstream_dirs()
    return Found(dirs.paths[0]) if dirs else Found(None, dirs.reason)


def chart_subdir(ref: ChartRef) -> Path:
    """The chart's place under the upstream directory."""
    template = _CHART_DIRS.get((ref.repo, ref.chart), "{name}-{version}/{name}")
    return Path("charts") / template.format(version=ref.version, name=ref.name)


def chart_source(ref: ChartRef) -> Found:
    """The source of a pinned chart, or None with the reason naming the chart."""
    place = chart_subdir(ref)
    path, looked, reason = _first_holding(place, lambda p: (p / "Chart.yaml").is_file())
    if reason:
        return Found(None, f"chart {ref.label}: {reason}")
    if path is None:
        expected = _is_expected(place)
        note = "" if expected else _not_expected_note(place)
        source = _CHART_SOURCES.get((ref.repo, ref.chart))
        return Found(None, f"chart {ref.label}: its source is not in {_places(looked)} "
                           f"(run {FETCH_COMMAND} to fetch it"
                           + (f"; its source: {source}" if source else "") + f"){note}",
                     expected=expected)
    return Found(path)


def kserve_crds_dir() -> Found:
    """The directory of KServe's CRDs at the pinned release (<plural>.yaml files)."""
    place = Path(f"kserve-{versions.KSERVE_VERSION}")
    path, looked, reason = _first_holding(
        place, lambda p: all((p / name).is_file() for name in versions.KSERVE_CRD_URLS))
    if reason:
        return Found(None, f"KServe {versions.KSERVE_VERSION} CRDs: {reason}")
    if path is None:
        first = looked[0]
        missing = [name for name in versions.KSERVE_CRD_URLS if not (first / name).is_file()]
        places = [crd_subdir(name) for name in missing]
        expected = any(_is_expected(place) for place in places)
        note = "" if expected else _not_expected_note(places[0])
        return Found(None, f"KServe {versions.KSERVE_VERSION} CRDs: {', '.join(missing)} "
                           f"not in {_places(looked)} (run {FETCH_COMMAND} to fetch them){note}",
                     expected=expected)
    return Found(path)


def helm() -> Found:
    """A helm that runs: the one on PATH, else ../shared/tools/helm (which downloads
    a real helm on first use)."""
    candidates = [Path(c) for c in (shutil.which("helm"), SHARED_TOOLS / "helm") if c]
    tried = []
    for path in dict.fromkeys(candidates):  # .ci/run puts the shared one on PATH too
        if not os.access(path, os.X_OK):
            continue
        try:
            # The first run of the shared wrapper downloads helm: give it time.
            result = subprocess.run([str(path), "version", "--short"], capture_output=True,
                                    text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as error:
            tried.append(f"{path}: {error}")
            continue
        if result.returncode == 0 and result.stdout.startswith("v3."):
            return Found(path)
        tried.append(f"{path}: {(result.stderr or result.stdout).strip()[:200] or 'no output'}")
    if not tried:
        return Found(None, f"no helm: none on PATH and no {SHARED_TOOLS / 'helm'}")
    return Found(None, "no working helm 3: " + "; ".join(tried))


# --- filling the project's own upstream directory (scripts/fetch_upstream.py) ----------

class FetchError(RuntimeError):
    pass


def fetch_destination() -> Path:
    """Where scripts/fetch_upstream.py puts the files: $KSERVE_CLUSTER_UPSTREAM, else .upstream/."""
    override = os.environ.get(ENV)
    return Path(override).expanduser() if override else PROJECT_DIR


def crd_subdir(file_name: str) -> Path:
    return Path(f"kserve-{versions.KSERVE_VERSION}") / file_name


LOCAL_PATH_MANIFEST = (Path(f"local-path-provisioner-{versions.LOCAL_PATH_PROVISIONER_VERSION}")
                       / "local-path-storage.yaml")


def pinned_files() -> list[tuple[str, Path]]:
    """The single files the tests read, as (URL, place under the upstream directory):
    KServe's CRDs and the local-path provisioner's release manifest."""
    files = [(url, crd_subdir(name)) for name, url in sorted(versions.KSERVE_CRD_URLS.items())]
    files.append((versions.LOCAL_PATH_PROVISIONER_MANIFEST_URL, LOCAL_PATH_MANIFEST))
    return files


def _swap_in(new: Path, destination: Path) -> None:
    """Replace `destination` by `new` (a sibling), so that a failed fetch leaves the old copy."""
    old = destination.with_name(destination.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if destination.exists():
        destination.rename(old)
    new.rename(destination)
    shutil.rmtree(old, ignore_errors=True)


def pull_chart(helm_path: Path, ref: ChartRef, destination: Path) -> None:
    """`helm pull --untar` of the pinned chart, placed at `destination`."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=destination.parent))
    try:
        command = [str(helm_path), "pull", ref.chart, "--version", ref.version,
                   "--untar", "--untardir", str(staging)]
        if ref.repo:
            command += ["--repo", ref.repo]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise FetchError(f"helm pull did not run: {error}") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
            raise FetchError(f"helm pull failed: {detail}")
        unpacked = [p for p in staging.iterdir() if (p / "Chart.yaml").is_file()]
        if len(unpacked) != 1:
            raise FetchError(f"helm pull left {len(unpacked)} charts in {staging}, expected one")
        _swap_in(unpacked[0], destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download(url: str, destination: Path, timeout: float = 60) -> None:
    """Fetch `url` to `destination`, written whole or not at all."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (OSError, ValueError, http.client.HTTPException) as error:  # URLError is an OSError
        raise FetchError(f"download failed: {error}") from None
    partial = destination.with_name(destination.name + ".part")
    partial.write_bytes(data)
    partial.replace(destination)


def remove_empty_dirs(top: Path) -> None:
    """Drop the empty directories a failed fetch leaves under `top` (not `top` itself)."""
    if not top.is_dir():
        return
    for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                       reverse=True):
        if not any(path.iterdir()):
            path.rmdir()
