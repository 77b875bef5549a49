"""predict.py --openai and loadtest.py --openai against a loopback server that speaks
the OpenAI API as KServe's Hugging Face runtime does at the pinned tag
(python/kserve/kserve/protocol/rest/openai/endpoints.py: `data: <json>` events,
`data: [DONE]` at the end, chunked), over HTTP and over HTTPS with a CA made here;
the shared reading of the answers (components/serving/openai_protocol.py); and the
refusal of --openai for a model that is not a huggingface one."""
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from components.loadtest.client import Target
from components.loadtest.figures import summary_lines
from components.loadtest.run import run_load_test
from components.serving import endpoints, openai_protocol
from tls_fixtures import ca_pem, http_server, https_server, make_ca

ROOT = Path(__file__).resolve().parents[1]
HOST = "tinyllama.kserve-test.example.com"
WORDS = ["Kube", "rnetes", " is", " a", " scheduler", "."]
FIRST_DELAY = 0.05   # the server sends the first token this long after the request came
TOKEN_DELAY = 0.01   # and each next one this long after the one before


class OpenAIServer(BaseHTTPRequestHandler):
    """POST /openai/v1/completions and /openai/v1/chat/completions. Streamed: one
    chunk per word (a chunk of chunked encoding each, flushed), `usage` on the last
    one when `usage_in_stream` (vLLM's completions do; the Hugging Face backend's
    stream does not). `cut` ends a stream without `[DONE]`."""
    protocol_version = "HTTP/1.1"
    seen: list = []
    usage_in_stream = True
    cut = False
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with OpenAIServer.lock:
            OpenAIServer.seen.append((self.path, self.headers.get("Host"),
                                      self.headers.get("Authorization"), body))
        chat = self.path == openai_protocol.PATHS[openai_protocol.CHAT]
        if self.path not in openai_protocol.PATHS.values():
            data = json.dumps({"detail": "Not Found"}).encode()
            self.send_response(404)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        words = WORDS[:body["max_tokens"]]
        if not body.get("stream"):
            choice = ({"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                       "finish_reason": "length"} if chat else
                      {"index": 0, "text": "".join(words), "finish_reason": "length"})
            data = json.dumps({"id": "1", "object": "text_completion", "model": body["model"],
                               "choices": [choice],
                               "usage": {"prompt_tokens": 3, "completion_tokens": len(words),
                                         "total_tokens": 3 + len(words)}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        time.sleep(FIRST_DELAY)
        for i, word in enumerate(words):
            last = i == len(words) - 1
            choice = ({"index": 0, "delta": {"content": word}} if chat else
                      {"index": 0, "text": word, "finish_reason": "length" if last else None})
            chunk = {"id": "1", "model": body["model"], "choices": [choice]}
            if last and self.usage_in_stream:
                chunk["usage"] = {"prompt_tokens": 3, "completion_tokens": len(words),
                                  "total_tokens": 3 + len(words)}
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            if not last:
                time.sleep(TOKEN_DELAY)
        if not self.cut:
            self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")


@pytest.fixture
def server():
    OpenAIServer.seen, OpenAIServer.usage_in_stream, OpenAIServer.cut = [], True, False
    with http_server(OpenAIServer) as url:
        yield url


def run(script, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("KSERVE_TOKEN", "KSERVE_CA_FILE")}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def stack_file(tmp: Path) -> Path:
    """A stack with a huggingface model (from a store) and a tensorflow one."""
    stack = {"config": {
        "kserve-cluster:nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}],
        "kserve-cluster:modelStores": [{"name": "llm", "namespace": "kserve-test", "size": "4Gi"}],
        "kserve-cluster:models": [
            {"name": "tinyllama", "namespace": "kserve-test", "format": "huggingface",
             "storageUri": "pvc://llm/tinyllama"},
            {"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
             "storageUri": "gs://kfserving-examples/models/tensorflow/flowers"}]}}
    (tmp / "Pulumi.llm.yaml").write_text(yaml.safe_dump(stack))
    return tmp


# ------------------------------------------------------------------ the protocol

def test_request_bodies_are_the_openai_shapes():
    completion = json.loads(openai_protocol.request_body("completions", "m", "Hi", 8, True))
    assert completion == {"model": "m", "prompt": "Hi", "max_tokens": 8, "stream": True}
    chat = json.loads(openai_protocol.request_body("chat", "m", "Hi", 8, False))
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                    "max_tokens": 8, "stream": False}
    with pytest.raises(ValueError, match="completions or chat"):
        openai_protocol.request_body("embeddings", "m", "Hi", 8, False)


def test_the_paths_are_the_runtimes():
    # KServe at the pinned tag: APIRouter(prefix="/openai"), "/v1/completions",
    # "/v1/chat/completions", "/v1/models".
    assert openai_protocol.PATHS == {"completions": "/openai/v1/completions",
                                     "chat": "/openai/v1/chat/completions"}
    assert openai_protocol.MODELS_PATH == "/openai/v1/models"


def test_an_event_stream_is_read_whatever_the_pieces():
    events = [{"choices": [{"text": w}]} for w in WORDS]
    events[-1]["usage"] = {"completion_tokens": 9}
    raw = "".join(f"data: {json.dumps(e)}\r\n\r\n" for e in events).encode() + \
        b": a comment\n\ndata: [DONE]\n\n"
    for size in (1, 3, 7, len(raw)):
        stream = openai_protocol.read_stream(raw[i:i + size] for i in range(0, len(raw), size))
        assert stream.answer().text == "".join(WORDS)
        assert (stream.text_chunks, stream.usage_tokens, stream.tokens, stream.done) == \
            (len(WORDS), 9, 9, True)
    # Without usage (the Hugging Face backend), the chunks with text are the tokens;
    # an empty delta (a chat chunk with only the role) is no token.
    chat = [{"choices": [{"delta": {"role": "assistant"}}]}] + \
        [{"choices": [{"delta": {"content": w}}]} for w in WORDS]
    stream = openai_protocol.read_stream(
        [b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in chat)])
    assert (stream.tokens, stream.usage_tokens, stream.done) == (len(WORDS), None, False)


def test_an_error_event_and_a_bad_line_are_kept():
    stream = openai_protocol.read_stream(
        [b'data: {"error": "out of memory"}\n\ndata: {not json\n\ndata: [DONE]\n'])
    assert stream.errors[0] == "out of memory" and "not JSON" in stream.errors[1]
    assert stream.tokens == 0


def test_a_non_streamed_answer():
    answer = openai_protocol.parse_answer({"choices": [{"message": {"content": "Hi"}}],
                                           "usage": {"completion_tokens": 1}})
    assert (answer.text, answer.tokens) == ("Hi", 1)
    with pytest.raises(ValueError, match="choices"):
        openai_protocol.parse_answer({"predictions": []})


# ------------------------------------------------------------------ predict.py

def test_predict_completions_and_chat(server, tmp_path):
    for kind in ("completions", "chat"):
        result = run("predict.py", "--url", server, "--host", HOST, "--model", "tinyllama",
                     "--openai", kind, "--prompt", "Kubernetes is", "--max-tokens", "4")
        assert result.returncode == 0, result.stderr
        assert result.stdout == "Kubernetes is a\n"
    (completions, host, auth, body), (chat, _, _, chat_body) = OpenAIServer.seen
    assert (completions, chat) == ("/openai/v1/completions", "/openai/v1/chat/completions")
    assert (host, auth) == (HOST, None)
    assert body == {"model": "tinyllama", "prompt": "Kubernetes is", "max_tokens": 4,
                    "stream": False}
    assert chat_body["messages"] == [{"role": "user", "content": "Kubernetes is"}]


def test_predict_streams_the_text_and_counts_the_tokens(server):
    OpenAIServer.usage_in_stream = False  # the Hugging Face backend's stream
    result = run("predict.py", "--url", server, "--host", HOST, "--model", "tinyllama",
                 "--openai", "chat", "--prompt", "Hi", "--stream")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(WORDS) + "\n"
    assert f"{len(WORDS)} tokens (counted as the chunks that carried text)" in result.stderr
    OpenAIServer.cut = True
    cut = run("predict.py", "--url", server, "--host", HOST, "--model", "tinyllama",
              "--openai", "completions", "--prompt", "Hi", "--stream")
    assert cut.returncode == 1 and "without `data: [DONE]`" in cut.stderr


def test_predict_with_a_stack_sends_the_models_name_and_refuses_another_format(server, tmp_path):
    stacks = stack_file(tmp_path)
    result = run("predict.py", "--stack", "llm", "--stacks-dir", str(stacks), "--url", server,
                 "--model", "tinyllama", "--openai", "completions", "--prompt", "Hi", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["usage"]["completion_tokens"] == len(WORDS)
    assert OpenAIServer.seen[0][1] == HOST and OpenAIServer.seen[0][3]["model"] == "tinyllama"
    refused = run("predict.py", "--stack", "llm", "--stacks-dir", str(stacks), "--url", server,
                  "--model", "tf-flower", "--openai", "chat", "--prompt", "Hi")
    assert refused.returncode == 6
    assert "model 'kserve-test/tf-flower' is format 'tensorflow'" in refused.stderr
    assert "huggingface" in refused.stderr and len(OpenAIServer.seen) == 1  # nothing sent


@pytest.mark.parametrize("args, message", [
    (["--openai", "chat"], "--openai needs --prompt"),
    (["--openai", "chat", "--prompt", "x", "image.jpg"], "give no IMAGE and no --data"),
    (["--prompt", "x"], "go with --openai"),
    (["--openai", "chat", "--prompt", "x", "--max-tokens", "0"], "--max-tokens must be"),
])
def test_predict_refuses_bad_openai_arguments(args, message):
    result = run("predict.py", "--url", "http://127.0.0.1:9", "--host", HOST, "--model", "m", *args)
    assert result.returncode == 6 and message in result.stderr


# ------------------------------------------------------------------ the load test

@pytest.mark.parametrize("usage", [True, False])
def test_the_load_test_measures_time_to_first_token_and_tokens(server, usage):
    OpenAIServer.usage_in_stream = usage
    body = openai_protocol.request_body("completions", "tinyllama", "Hi", 16, stream=True)
    target = Target(server, HOST, openai_protocol.PATHS["completions"], body, streamed=True)
    result = run_load_test(target, 1.0, concurrency=2, progress_stream=None)
    assert result["requests"] > 0 and result["errors"] == 0
    tokens = result["openai"]
    assert tokens["answers"] == result["ok"]
    assert tokens["tokens"] == len(WORDS) * result["ok"]
    assert tokens["counted_by"] == ("usage" if usage else "chunks")
    # The first token comes after the server's first delay and before the whole answer.
    assert FIRST_DELAY * 1000 <= tokens["ttft_ms"]["p50"] < result["latency_ms"]["p50"]
    # Over the whole test (elapsed_s is rounded to the millisecond in the figures).
    assert tokens["tokens_per_s"] == pytest.approx(tokens["tokens"] / result["elapsed_s"], rel=1e-2)
    # Per answer after its first token: at most one token per TOKEN_DELAY.
    assert 0 < tokens["answer_tokens_per_s"]["p50"] <= 1 / TOKEN_DELAY
    lines = "\n".join(summary_lines(result))
    assert "time to first token ms: p50" in lines and "tokens/s overall" in lines


def test_a_stream_cut_before_done_is_an_error(server):
    OpenAIServer.cut = True
    body = openai_protocol.request_body("chat", "tinyllama", "Hi", 4, stream=True)
    target = Target(server, HOST, openai_protocol.PATHS["chat"], body, streamed=True)
    result = run_load_test(target, 0.3, concurrency=1, progress_stream=None)
    assert result["ok"] == 0 and result["transport_errors"] == {"stream": result["requests"]}
    assert result["openai"] is None


def test_a_v1_load_test_has_no_token_figures(server):
    # The V1 path answers 404 here: no stream, no token figures, the status counted.
    target = Target(server, HOST, "/v1/models/tinyllama:predict", b"{}")
    result = run_load_test(target, 0.3, concurrency=1, progress_stream=None)
    assert result["openai"] is None and "404" in result["status_counts"]


def test_the_loadtest_command_with_a_stack(server, tmp_path):
    stacks = stack_file(tmp_path)
    out = tmp_path / "out"
    result = run("loadtest.py", "tinyllama", "--stack", "llm", "--stacks-dir", str(stacks),
                 "--url", server, "--openai", "chat", "--prompt", "Hello", "--max-tokens", "3",
                 "--concurrency", "2", "--duration", "0.5", "--no-replicas", "--out", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads((out / "figures.json").read_text())
    assert figures["url"].endswith("/openai/v1/chat/completions")
    assert figures["openai"]["tokens"] == 3 * figures["ok"]
    assert "time to first token ms:" in result.stdout
    path, host, _, body = OpenAIServer.seen[0]
    assert (path, host, body["model"], body["stream"], body["max_tokens"]) == (
        "/openai/v1/chat/completions", HOST, "tinyllama", True, 3)
    refused = run("loadtest.py", "tf-flower", "--stack", "llm", "--stacks-dir", str(stacks),
                  "--url", server, "--openai", "chat", "--concurrency", "1", "--duration", "0.5",
                  "--no-replicas", "--out", str(tmp_path / "no"))
    assert refused.returncode == 6 and "is format 'tensorflow'" in refused.stderr
    assert not (tmp_path / "no").exists()
    both = run("loadtest.py", "tinyllama", "--url", server, "--host", HOST, "--openai", "chat",
               "--data", str(tmp_path / "x.json"), "--concurrency", "1", "--duration", "1")
    assert both.returncode == 6 and "not allowed with" in both.stderr


# ------------------------------------------------------------------ over HTTPS

def test_both_tools_stream_over_https_with_the_ca(tmp_path):
    ca = make_ca("stack CA")
    (tmp_path / "ca.pem").write_bytes(ca_pem(ca))
    OpenAIServer.seen, OpenAIServer.usage_in_stream, OpenAIServer.cut = [], True, False
    token = "header.payload.signature"
    with https_server(OpenAIServer, ca, [HOST], tmp_path) as url:
        predicted = run("predict.py", "--url", url, "--host", HOST, "--model", "tinyllama",
                        "--token", token, "--ca-file", str(tmp_path / "ca.pem"),
                        "--openai", "completions", "--prompt", "Hi", "--stream")
        loaded = run("loadtest.py", "kserve-test/tinyllama", "--url", url, "--host", HOST,
                     "--token", token, "--ca-file", str(tmp_path / "ca.pem"),
                     "--openai", "completions", "--rate", "4", "--duration", "0.5",
                     "--no-replicas", "--out", str(tmp_path / "out"))
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout == "".join(WORDS) + "\n"
    assert f"{len(WORDS)} tokens (as the server counted them)" in predicted.stderr
    assert loaded.returncode == 0, loaded.stderr
    figures = json.loads((tmp_path / "out" / "figures.json").read_text())
    assert figures["requests"] == 2 and figures["openai"]["tokens"] == 2 * len(WORDS)
    assert {s[2] for s in OpenAIServer.seen} == {f"Bearer {token}"}
    assert token not in predicted.stdout + predicted.stderr + loaded.stdout + loaded.stderr


def test_the_endpoint_of_a_huggingface_model_from_the_stack(tmp_path):
    stacks = stack_file(tmp_path)
    endpoint = endpoints.from_stack("llm", "tinyllama", stacks)
    assert endpoints.openai_model(endpoint, "predict.py") == "tinyllama"
    given = endpoints.given("http://127.0.0.1:1", HOST, "kserve-test/anything")
    assert endpoints.openai_model(given, "predict.py") == "anything"  # not known: sent as given
