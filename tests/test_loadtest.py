"""The load test against a V1 server on loopback (HTTP/1.1 keep-alive, threads) whose
replica count changes while the load runs, read through a fake replica source."""
import json
import os
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from components.serving import endpoints
from components.loadtest.client import Target
from components.loadtest.figures import percentile, per_second
from components.loadtest.client import Outcome
from components.loadtest.plot import draw
from components.loadtest.replicas import (
    KubectlSource, ReplicaSample, Sampler, SourceError, canary_share_from_isvc,
    deployments_replicas)
from components.loadtest.run import progress_line, run_load_test
from components.loadtest.client import Progress
from components.serving.v1_protocol import SMOKE_IMAGE_JPEG, predict_path, request_body
from access_fixtures import expires_in

ROOT = Path(__file__).resolve().parents[1]
HOST = "tf-flower.kserve-test.example.com"
DELAY = 0.02  # every answer takes at least this long
ERROR_EVERY = 10  # every tenth request answers 500


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the ingress gateway
    count = 0
    lock = threading.Lock()
    headers_seen: list = []
    bodies: list = []
    refuse = None  # 401 or 403: the gateway refuses every request, as Istio does

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with Handler.lock:
            Handler.count += 1
            number = Handler.count
            Handler.headers_seen.append((self.headers["Host"], self.path,
                                         self.headers.get("Authorization")))
            Handler.bodies.append(body)
        if Handler.refuse:
            return self._answer(Handler.refuse, {"error": "RBAC: access denied"})
        time.sleep(DELAY)
        if number % ERROR_EVERY == 0:
            return self._answer(500, {"error": "boom"})
        return self._answer(200, {"predictions": [{"prediction": 0, "scores": [1.0]}]})

    def do_GET(self):
        # Not Prometheus: its query API is not here.
        self._answer(404, {"error": f"no {self.path.split('?')[0]} here"})


@pytest.fixture
def server():
    Handler.count = 0
    Handler.headers_seen = []
    Handler.bodies = []
    Handler.refuse = None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class ScaleOut:
    """A replica source whose model scales 1 -> 2 -> 3 as calls go by, with a canary split."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        ready = min(3, 1 + self.calls // 2)
        return ReplicaSample(0.0, desired=min(3, ready + 1), ready=ready, canary_share=0.1)


def loadtest(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "loadtest.py"), *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def target(url, token=None):
    return Target(url, HOST, predict_path("tf-flower"), request_body(SMOKE_IMAGE_JPEG).encode(), token)


def test_open_loop_figures_and_replica_series_are_right(server):
    source = ScaleOut()
    rate, duration = 50.0, 2.0
    result = run_load_test(target(server, token="t0ken"), duration, rate=rate, source=source,
                           replica_interval=0.25, progress_stream=None, about={"model": "kserve-test/tf-flower"})
    assert result["requests"] == int(rate * duration) == Handler.count
    expected_errors = int(rate * duration) // ERROR_EVERY
    assert result["errors"] == result["http_errors"] == expected_errors
    assert result["ok"] == result["requests"] - expected_errors
    assert result["status_counts"] == {"200": result["ok"], "500": expected_errors}
    assert result["transport_errors"] == {}
    # Every answer waited DELAY at the server; percentiles are ordered.
    lat = result["latency_ms"]
    assert DELAY * 1000 <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    # The asked rate is held (duration plus the last answer's time).
    assert result["elapsed_s"] >= duration
    assert result["achieved_rate"] == pytest.approx(result["requests"] / result["elapsed_s"], rel=1e-3)
    # One bucket per second of sending, all requests in them.
    assert result["series"]["t"] == [0.5, 1.5]
    assert sum(result["series"]["rate"]) == result["requests"]
    assert sum(result["series"]["errors"]) == expected_errors
    # The replica series is what the source said, in order, with times since the start
    # (how often it samples: test_the_sampler_keeps_its_schedule, on a fake clock).
    samples = result["replicas"]
    assert len(samples) == source.calls >= 2  # at the start and after the load
    assert [s["ready"] for s in samples] == [min(3, 1 + n // 2) for n in range(1, source.calls + 1)]
    assert [s["desired"] for s in samples] == [min(3, s["ready"] + 1) for s in samples]
    assert all(s["canary_share"] == 0.1 for s in samples)
    times = [s["t"] for s in samples]
    assert times == sorted(times) and times[0] >= 0 and times[-1] >= duration
    # The token and the V1 request reached the server as sent.
    assert {h for h in Handler.headers_seen} == {(HOST, "/v1/models/tf-flower:predict", "Bearer t0ken")}


def test_closed_loop_keeps_the_concurrency(server):
    result = run_load_test(target(server), 1.0, concurrency=4, progress_stream=None)
    # 4 workers, each answer >= DELAY: at most 4/DELAY requests per second.
    assert 0 < result["requests"] <= 4 / DELAY * result["elapsed_s"] + 4
    assert result["concurrency"] == 4 and result["asked_rate"] is None
    assert result["requests"] == Handler.count


def test_unreachable_server_counts_connect_errors():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_load_test(target(f"http://127.0.0.1:{port}"), 0.5, rate=20, progress_stream=None)
    assert result["requests"] == 10 and result["ok"] == 0
    assert result["transport_errors"] == {"connect": 10}


def test_the_plot_is_a_png_of_the_expected_size(server, tmp_path):
    result = run_load_test(target(server), 2.0, rate=40, source=ScaleOut(), replica_interval=0.3,
                           progress_stream=None, about={"model": "kserve-test/tf-flower"})
    path = draw(result, tmp_path / "plot.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (1000, 900)
    assert len(data) > 20_000  # three panels of lines, not an empty canvas


def test_command_writes_json_and_png_and_prints_the_figures(server, tmp_path):
    out = tmp_path / "run"
    token_file = tmp_path / "token"
    token_file.write_text("file-token\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "loadtest.py"), "kserve-test/tf-flower",
                           "--url", server, "--host", HOST, "--rate", "40", "--duration", "1",
                           "--token-file", str(token_file), "--no-replicas", "--out", str(out),
                           "--insecure-token-over-http"],  # the fake gateway is plain http
                          capture_output=True, timeout=120)
    done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()  # keep the \r
    assert done.returncode == 0, done.stderr
    figures = json.loads((out / "figures.json").read_text())
    assert figures["requests"] == 40 and figures["errors"] == 4
    assert figures["model"] == "kserve-test/tf-flower" and figures["host"] == HOST
    assert "40 requests in" in done.stdout and "36 ok, 4 errors" in done.stdout
    assert "latency ms: p50" in done.stdout and "p99" in done.stdout
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "\r[" in done.stderr  # the progress line, redrawn in place
    assert {h[2] for h in Handler.headers_seen} == {"Bearer file-token"}


def test_command_refuses_bad_arguments(tmp_path):
    run = loadtest
    # Usage errors exit 6 as documented; 2 means that nothing reached the model.
    both = run("m", "--rate", "1", "--concurrency", "2", "--duration", "1", "--url", "http://x", "--host", "h")
    assert both.returncode == 6 and "not allowed with" in both.stderr
    nowhere = run("m", "--rate", "1", "--duration", "1")
    assert nowhere.returncode == 6 and "give --stack" in nowhere.stderr
    no_duration = run("m", "--rate", "1", "--url", "http://x", "--host", "h")
    assert no_duration.returncode == 6 and "--duration" in no_duration.stderr
    no_image = run("m", "--url", "http://127.0.0.1:1", "--host", "h", "--rate", "1", "--duration", "1",
                   "--image", str(tmp_path / "flower.jpg"), "--out", str(tmp_path / "out"))
    assert no_image.returncode == 6, no_image.stderr
    assert f"--image {tmp_path / 'flower.jpg'}" in no_image.stderr and "Traceback" not in no_image.stderr
    assert not (tmp_path / "out").exists()
    missing = run("nope", "--stack", "lab", "--rate", "1", "--duration", "1")
    assert missing.returncode == 6 and "has no model 'nope'" in missing.stderr
    bad_url = run("m", "--url", "ftp://x:1", "--host", "h", "--rate", "1", "--duration", "1")
    assert bad_url.returncode == 6 and "not an http:// or https:// URL" in bad_url.stderr
    token_over_http = run("m", "--url", "http://127.0.0.1:1", "--host", "h", "--rate", "1",
                          "--duration", "1", "--token", "t0ken", "--out", str(tmp_path / "out"))
    assert token_over_http.returncode == 6 and "refusing to send a token over plain http" in \
        token_over_http.stderr and "--insecure-token-over-http" in token_over_http.stderr
    assert "t0ken" not in token_over_http.stderr and not (tmp_path / "out").exists()


def test_stack_file_gives_the_endpoint():
    endpoint = endpoints.from_stack("lab", "tf-flower")
    assert (endpoint.base_url, endpoint.host, endpoint.name, endpoint.namespace) == \
        ("http://10.0.2.21:31903", HOST, "tf-flower", "kserve-test")


def test_token_sources(tmp_path):
    assert endpoints.read_token("a", None, {}) == "a"
    assert endpoints.read_token(None, None, {endpoints.TOKEN_ENV: "env"}) == "env"
    assert endpoints.read_token(None, None, {}) is None
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(endpoints.EndpointError, match="empty"):
        endpoints.read_token(None, str(empty), {})
    with pytest.raises(endpoints.EndpointError, match="not both"):
        endpoints.read_token("a", str(empty), {})


def test_a_torchserve_model_is_loaded_under_its_served_name(server, tmp_path):
    """The example stack's model is the InferenceService `torchserve`, but TorchServe
    answers as `adder`: the load test must ask for that path (a 404 otherwise)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "loadtest.py"), "kserve-test/torchserve",
         "--stack", "torchserve-example", "--url", server, "--rate", "20", "--duration", "1",
         "--no-replicas", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "out" / "figures.json").read_text())
    assert figures["url"].endswith("/v1/models/adder:predict")
    assert figures["model"] == "kserve-test/torchserve"
    assert Handler.headers_seen and {(host, path) for host, path, _ in Handler.headers_seen} == {
        ("torchserve.kserve-test.example.com", "/v1/models/adder:predict")}


def test_a_protected_model_is_refused_without_a_token_before_anything_is_sent(tmp_path):
    stack = {"config": {
        "kserve-cluster:nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}],
        "kserve-cluster:projects": [{"name": "team-a", "tokens": [{"name": "ci", "expires": expires_in(300)}]}],
        "kserve-cluster:models": [{"name": "tf-flower", "namespace": "team-a", "format": "tensorflow",
                                   "storageUri": "gs://kfserving-examples/models/tensorflow/flowers"}]}}
    (tmp_path / "Pulumi.teams.yaml").write_text(yaml.safe_dump(stack))
    env = {k: v for k, v in os.environ.items() if k != endpoints.TOKEN_ENV}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "loadtest.py"), "team-a/tf-flower", "--stack",
         "teams", "--stacks-dir", str(tmp_path), "--rate", "1", "--duration", "1", "--no-replicas",
         "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 7, result.stderr
    assert "is in project team-a and needs one of its tokens" in result.stderr
    assert not (tmp_path / "out").exists()


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, p) for p in (50, 90, 95, 99, 100)] == [50, 90, 95, 99, 100]
    assert percentile([7.0], 99) == 7.0 and percentile([], 50) is None


def test_per_second_buckets_by_send_time():
    outcomes = [Outcome(due=0.1, latency=1.5, status=200), Outcome(due=0.9, latency=0.2, status=503),
                Outcome(due=1.2, latency=0.1, status=200)]
    series = per_second(outcomes, 2.0)
    assert series["rate"] == [2, 1] and series["errors"] == [1, 0]
    assert series["p50"] == [1500.0, 100.0]


def test_kubectl_source_reads_deployments_and_the_canary_split():
    calls = []

    def fake_run(argv, **kwargs):
        calls.append(argv)
        if "deployments" in argv:
            out = {"items": [{"spec": {"replicas": 2}, "status": {"readyReplicas": 1}},
                             {"spec": {"replicas": 1}, "status": {}}]}
        else:
            out = {"status": {"components": {"predictor": {"traffic": [
                {"revisionName": "r2", "percent": 10, "latestRevision": True},
                {"revisionName": "r1", "percent": 90, "latestRevision": False}]}}}}
        return subprocess.CompletedProcess(argv, 0, json.dumps(out), "")

    sample = KubectlSource("kserve-test", "tf-flower", "/tmp/kc", run=fake_run)()
    assert (sample.desired, sample.ready, sample.canary_share) == (3, 1, 0.1)
    assert calls[0][:3] == ["kubectl", "--kubeconfig", "/tmp/kc"]
    assert "serving.kserve.io/inferenceservice=tf-flower" in calls[0]
    assert deployments_replicas({"items": []}) == (0, 0)
    assert canary_share_from_isvc({"status": {}}) is None


def test_progress_line_is_one_line():
    progress = Progress(sent=120, completed=118, errors=2, recent=[0.01] * 50)
    line = progress_line(progress, 2.0, 10.0, "2/3")
    assert "\n" not in line and "[####" in line and "err 2" in line and "replicas 2/3" in line
    assert "p95 10.0ms" in line


def test_help_gives_the_exit_statuses():
    result = loadtest("--help")
    assert result.returncode == 0
    assert "Exit status" in result.stdout and "6 bad arguments" in result.stdout


def test_the_default_output_directory_is_ignored_by_git(tmp_path):
    """Run from the repository (or scripts/), the figures must not show up in `git status`."""
    from components.loadtest.run import default_out_dir
    out = default_out_dir("tf-flower", time.localtime(0))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    for where in (tmp_path, tmp_path / "scripts"):
        check = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", "--no-index", "-q",
                                str(where / out / "figures.json")])
        assert check.returncode == 0, f"{where / out} is not ignored by .gitignore"


def test_a_refused_token_exits_7_with_the_explanation_predict_gives(server, tmp_path):
    Handler.refuse = 401
    result = loadtest("kserve-test/tf-flower", "--url", server, "--host", HOST, "--rate", "10",
                      "--duration", "0.5", "--no-replicas", "--token", "old.token.sig",
                      "--insecure-token-over-http",
                      "--out", str(tmp_path / "out"))
    assert result.returncode == 7, result.stderr
    assert "refused the token (HTTP 401" in result.stderr and "tokens --show-secrets" in result.stderr
    assert "old.token.sig" not in result.stdout + result.stderr
    assert (tmp_path / "out" / "figures.json").is_file()  # the figures of the run are kept


def test_no_token_for_a_protected_model_exits_7_as_predict_does(server, tmp_path):
    Handler.refuse = 403
    env = {k: v for k, v in os.environ.items() if k != endpoints.TOKEN_ENV}
    result = loadtest("kserve-test/tf-flower", "--url", server, "--host", HOST, "--rate", "10",
                      "--duration", "0.5", "--no-replicas", "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 7, result.stderr
    image = tmp_path / "flower.jpg"
    image.write_bytes(SMOKE_IMAGE_JPEG)
    predicted = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), "--url", server,
                                "--host", HOST, "--model", "kserve-test/tf-flower", str(image)],
                               capture_output=True, text=True, timeout=60, env=env)
    assert predicted.returncode == 7, predicted.stderr
    explanation = predicted.stderr.strip().removeprefix("predict.py: ")
    assert "no token was sent" in explanation and "--token-file" in explanation
    assert f"loadtest.py: {explanation}" in result.stderr


def test_a_failing_prometheus_is_shown_on_the_terminal(server, tmp_path):
    prometheus = f"{server}/prometheus"  # answers 404
    result = loadtest("kserve-test/tf-flower", "--stack", "lab", "--url", server, "--rate", "10",
                      "--duration", "0.5", "--prometheus", prometheus, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    failure = next(line for line in result.stderr.splitlines() if "replicas could not be read" in line)
    assert prometheus in failure
    assert "HTTP Error 404" in result.stderr


def test_a_failing_kubectl_is_shown_on_the_terminal_in_full(server, tmp_path):
    lines = [f"E0101 00:00:0{n} memcache.go:265] couldn't get current server API group list: Get "
             f"\"https://10.0.2.21:6443/api\": dial tcp 10.0.2.21:6443: connect: connection refused"
             for n in range(3)]
    lines.append("The connection to the server 10.0.2.21:6443 was refused - did you specify the "
                 "right host or port?")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text("#!/bin/sh\ncat >&2 <<'EOF'\n" + "\n".join(lines) + "\nEOF\nexit 1\n")
    (bin_dir / "kubectl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = loadtest("kserve-test/tf-flower", "--url", server, "--host", HOST, "--rate", "10",
                      "--duration", "0.5", "--kubeconfig", str(tmp_path / "kubeconfig"),
                      "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    assert "replicas could not be read" in result.stderr
    for line in lines:  # the first ones too, not only the last 200 characters
        assert line in result.stderr


def test_data_sends_a_json_body_of_the_users_own(server, tmp_path):
    request = ROOT / "examples" / "torchserve" / "request.json"
    result = loadtest("kserve-test/torchserve", "--stack", "torchserve-example", "--url", server,
                      "--data", str(request), "--rate", "10", "--duration", "0.5", "--no-replicas",
                      "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert len(Handler.bodies) == 5
    assert all(body == json.loads(request.read_text()) for body in Handler.bodies)
    assert {path for _, path, _ in Handler.headers_seen} == {"/v1/models/adder:predict"}


def test_data_that_is_not_json_or_with_an_image_is_refused(server, tmp_path):
    bad = tmp_path / "request.json"
    bad.write_text("instances: [1, 2]")
    common = ("kserve-test/torchserve", "--stack", "torchserve-example", "--url", server, "--rate",
              "10", "--duration", "0.5", "--no-replicas", "--out", str(tmp_path / "out"))
    result = loadtest(*common, "--data", str(bad))
    assert result.returncode == 6 and f"--data {bad}" in result.stderr
    assert "is not JSON" in result.stderr and "Traceback" not in result.stderr
    both = loadtest(*common, "--data", str(bad), "--image", str(bad))
    assert both.returncode == 6 and "not allowed with" in both.stderr
    assert Handler.count == 0 and not (tmp_path / "out").exists()


class FakeTime:
    """A clock that moves only when the sampler waits or the source takes time."""

    def __init__(self, now=100.0, stop_at=None):
        self.now, self.stop_at, self.waits = now, stop_at, []

    def clock(self):
        return self.now

    def wait(self, seconds):
        self.waits.append(seconds)
        self.now += seconds
        return self.stop_at is not None and self.now >= self.stop_at


def test_the_sampler_keeps_its_schedule_whatever_the_source_takes():
    fake = FakeTime(100.0, stop_at=102.0)

    def slow_source():  # each reading takes a quarter of a second
        fake.now += 0.25
        return ReplicaSample(0.0, desired=2, ready=1)

    sampler = Sampler(slow_source, interval=0.5, clock=fake.clock, wait=fake.wait)
    sampler.start(100.0)
    samples = sampler.stop()
    # One at the start, one per tick, one after the load (at stop).
    assert [s.t for s in samples] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert fake.waits == [0.25, 0.25, 0.25, 0.25]
    assert all((s.desired, s.ready) == (2, 1) for s in samples) and sampler.failures == []


def test_a_source_slower_than_the_interval_skips_ticks():
    fake = FakeTime(0.0, stop_at=3.0)

    def very_slow():
        fake.now += 0.7
        return ReplicaSample(0.0, ready=1)

    sampler = Sampler(very_slow, interval=0.5, clock=fake.clock, wait=fake.wait)
    sampler.start(0.0)
    assert [s.t for s in sampler.stop()] == [0.0, 1.0, 2.0, 3.0]


def test_sampler_failures_are_recorded_whole_and_do_not_stop_it():
    fake = FakeTime(0.0, stop_at=1.0)
    long_error = "x" * 500
    outcomes = iter([SourceError(long_error), ReplicaSample(0.0, ready=1), KeyError("data")])

    def flaky():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    sampler = Sampler(flaky, interval=0.5, clock=fake.clock, wait=fake.wait)
    sampler.start(0.0)
    assert [s.t for s in sampler.stop()] == [0.5]
    assert sampler.failures == [long_error, "KeyError: 'data'"]
