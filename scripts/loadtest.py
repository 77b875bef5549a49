#!/usr/bin/env python3
"""Load a model with V1 requests through the ingress; print and plot what happened.

    loadtest.py MODEL --stack lab [--rate 50 | --concurrency 8] --duration 60
    loadtest.py NAMESPACE/NAME --url http://10.0.2.21:31903 --host tf-flower.kserve-test.example.com --rate 20 --duration 30
    loadtest.py kserve-test/torchserve --stack torchserve-example --data examples/torchserve/request.json --rate 5 --duration 30
    loadtest.py team-a/iris --stack lab --token-file t --ca-file ca.pem --rate 10 --duration 30
    loadtest.py tinyllama --stack gpu-example --openai chat --prompt "Hello" --max-tokens 64 --concurrency 4 --duration 60

MODEL is NAME or NAMESPACE/NAME. --rate sends that many requests per second
whatever the answers do (latency counts from when each request was due);
--concurrency keeps that many requests in flight. Each request is a V1 predict
with a small JPEG (--image FILE for another) or, with --data FILE, a JSON
body of your own (TorchServe and other models that take JSON). With --openai
completions|chat (a huggingface model), each request is a streamed OpenAI
completion or chat request with --prompt and --max-tokens, and the figures add
the time to the first token (from when the request was due, as the latency),
the tokens per second over the test and per answer, and the tokens (the
server's usage counts, else the streamed chunks that carried text). A progress line
runs on stderr; at the end it prints the latency percentiles, the errors and
the achieved rate, and writes figures.json and plot.png (latency, rate and the
model's replicas against time, with the canary's share when there is one) into
--out (default: loadtest-NAME-TIME/, which .gitignore ignores).

Replicas come from the cluster: kubectl with --kubeconfig (or $KUBECONFIG, or
the stack's `kubeconfig` output when the Pulumi CLI is here), or from
Prometheus with --prometheus URL; when they cannot be read, the reasons are
printed at the end. A token, when the model needs one, comes from --token,
--token-file or $KSERVE_TOKEN and is sent as `Authorization: Bearer`.

HTTPS: with --stack, a model that needs a token is loaded over https on the
gateway's HTTPS port (Serverless; in RawDeployment the gateway has no TLS), and
so is any model when a CA file is given; an https --url works too. The
certificate is checked against the model's host with the CA from --ca-file or
$KSERVE_CA_FILE (`pulumi stack output ingressCaCertificate > ca.pem`), else the
system's CAs, once before the test starts. A token is never sent over plain
http unless --insecure-token-over-http is given; redirects are not followed
(a 3xx counts as an error), so the token never goes to another host.

Exit status: 0 done, 2 nothing reached the model, 6 bad arguments or stack file
(a token over plain http without --insecure-token-over-http among them, and
--openai for a model that is not a huggingface one),
7 no token for a model that needs one, or the gateway refused the requests
(401/403), 8 the gateway's certificate is not trusted (wrong or missing CA) or
TLS failed.
"""
from __future__ import annotations

import os
import ssl
import sys
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components.loadtest.target import mode_of, stack_kubeconfig  # noqa: E402
from components.loadtest.client import DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT, Target  # noqa: E402
from components.loadtest.figures import refused_status, replica_failure_lines, summary_lines  # noqa: E402
from components.loadtest.plot import draw  # noqa: E402
from components.loadtest.replicas import KubectlSource, PrometheusSource  # noqa: E402
from components.loadtest.run import default_out_dir, run_load_test, write_json  # noqa: E402
from components.monitoring import dashboard  # noqa: E402
from components.problems import ConfigError  # noqa: E402
from components.serving.command_line import (  # noqa: E402
    EXIT_TLS, EXIT_UNAUTHORIZED, EXIT_UNREACHABLE, EXIT_USAGE, ToolParser, read_argument_file,
    read_json_body)
from components.serving.endpoints import (  # noqa: E402
    Endpoint, EndpointError, TokenNeeded, from_stack_with_token, given, openai_model, read_token,
    refusal)
from components.serving import openai_protocol  # noqa: E402
from components.serving.transport import (  # noqa: E402
    TlsError, add_tls_arguments, ca_file_of, check_token_transport, tls_context, tls_failure)
from components.serving.v1_protocol import SMOKE_IMAGE_JPEG, predict_path, request_body  # noqa: E402


def replica_source(args, endpoint: Endpoint, cleanup: list):
    if args.no_replicas:
        return None
    namespace = endpoint.namespace
    if args.prometheus:
        if endpoint.model is None:
            raise EndpointError("--prometheus needs --stack (the model's mode and scaling)")
        mode = mode_of(endpoint)
        model = endpoint.model
        return PrometheusSource(args.prometheus, dashboard.desired_replicas(model, mode),
                                dashboard.actual_replicas(model),
                                dashboard.revision_share(model) if model.canary else None)
    if not namespace:
        print("loadtest.py: no namespace (give MODEL as NAMESPACE/NAME): replicas not read",
              file=sys.stderr)
        return None
    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG")
    if not kubeconfig and args.stack:
        kubeconfig = stack_kubeconfig(args.stack)
        if kubeconfig:
            cleanup.append(kubeconfig)
    if not kubeconfig:
        print("loadtest.py: no kubeconfig (--kubeconfig, $KUBECONFIG or the Pulumi CLI): "
              "replicas not read", file=sys.stderr)
        return None
    return KubectlSource(namespace, endpoint.name, kubeconfig)


def request(args, endpoint: Endpoint) -> bytes:
    """The body every request carries: a streamed OpenAI request with --openai, --data
    as given, else --image (or the small JPEG) in tf-flower's V1 request."""
    if args.openai:
        return openai_protocol.request_body(args.openai, openai_model(endpoint, "loadtest.py"),
                                            args.prompt, args.max_tokens, stream=True)
    if args.data is not None:
        return read_json_body("--data", args.data)
    image = read_argument_file("--image", args.image, "Give an image file, or leave --image "
                               "out to send a small built-in JPEG.") if args.image \
        else SMOKE_IMAGE_JPEG
    return request_body(image).encode()


def main(argv: Optional[list[str]] = None) -> int:
    parser = ToolParser(__doc__)
    parser.add_argument("model", help="NAME or NAMESPACE/NAME")
    load = parser.add_mutually_exclusive_group(required=True)
    load.add_argument("--rate", type=float, help="requests per second (open loop)")
    load.add_argument("--concurrency", type=int, help="requests in flight (closed loop)")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--stack", help="read address, port and host from stacks/Pulumi.STACK.yaml")
    parser.add_argument("--stacks-dir", type=Path, help="where the stack files are (default: stacks/)")
    parser.add_argument("--url", help="base URL of the ingress, e.g. http://10.0.2.21:31903")
    parser.add_argument("--host", help="Host header, e.g. tf-flower.kserve-test.example.com")
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--image", type=Path, help="image to send (default: a small JPEG)")
    body.add_argument("--data", type=Path, help="a JSON file to send as the request body "
                      "instead of an image (a V1 request of your own, e.g. for TorchServe)")
    body.add_argument("--openai", choices=openai_protocol.KINDS,
                      help="streamed OpenAI completions or chat requests (a huggingface model)")
    parser.add_argument("--prompt", default=openai_protocol.DEFAULT_PROMPT,
                        help=f"with --openai: the prompt (default {openai_protocol.DEFAULT_PROMPT!r})")
    parser.add_argument("--max-tokens", type=int, default=openai_protocol.DEFAULT_MAX_TOKENS,
                        help=f"with --openai: tokens per answer at most "
                             f"(default {openai_protocol.DEFAULT_MAX_TOKENS})")
    parser.add_argument("--token", help="bearer token (or --token-file, or $KSERVE_TOKEN)")
    parser.add_argument("--token-file", help="file holding the bearer token")
    add_tls_arguments(parser)
    parser.add_argument("--kubeconfig", help="kubeconfig to read the replicas with")
    parser.add_argument("--prometheus", help="read the replicas from this Prometheus URL instead")
    parser.add_argument("--no-replicas", action="store_true", help="do not read replicas")
    parser.add_argument("--replica-interval", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds per request (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        help=f"open-loop connection limit (default {DEFAULT_MAX_CONNECTIONS})")
    parser.add_argument("--out", type=Path, help="directory for figures.json and plot.png "
                        "(default: loadtest-NAME-TIME, git-ignored)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or (args.rate is not None and args.rate <= 0) or \
            (args.concurrency is not None and args.concurrency < 1):
        parser.error("--duration and --rate must be above 0, --concurrency at least 1")
    if args.max_tokens < 1:
        parser.error("--max-tokens must be at least 1")
    cleanup: list[str] = []
    try:
        token = read_token(args.token, args.token_file)
        ca_file = ca_file_of(args.ca_file)
        if args.stack:
            endpoint, token = from_stack_with_token(args.stack, args.model, args.stacks_dir,
                                                    "loadtest.py", token, https=ca_file is not None)
            endpoint = endpoint.elsewhere(args.url, args.host)
        elif args.url and args.host:
            endpoint = given(args.url, args.host, args.model)
        else:
            parser.error("give --stack, or both --url and --host")
        check_token_transport(endpoint.base_url, token, args.insecure_token_over_http)
        https = endpoint.base_url.startswith("https:")
        # The served name: TorchServe answers under its model_snapshot name.
        path = openai_protocol.PATHS[args.openai] if args.openai else \
            predict_path(endpoint.served_name)
        target = Target(endpoint.base_url, endpoint.host, path, request(args, endpoint), token,
                        tls_context(ca_file) if https else None, streamed=bool(args.openai))
        target.address()  # a bad URL fails here, before anything is sent
        try:
            target.check_tls()  # an untrusted certificate fails here, before the test
        except ssl.SSLError as error:
            raise TlsError(tls_failure(error, endpoint.base_url, endpoint.host, ca_file)) from None
        except OSError:
            pass  # not reached: the test itself reports it (exit 2)
        source = replica_source(args, endpoint, cleanup)
        about = {"model": endpoint.label, "url": endpoint.base_url + target.path, "host": endpoint.host,
                 "replica_source": getattr(source, "description", None)}
        result = run_load_test(target, args.duration, rate=args.rate,
                               concurrency=args.concurrency, source=source,
                               replica_interval=args.replica_interval, timeout=args.timeout,
                               max_connections=args.max_connections, about=about)
    except TokenNeeded as error:
        print(f"loadtest.py: {error}", file=sys.stderr)
        return EXIT_UNAUTHORIZED
    except TlsError as error:
        print(f"loadtest.py: {error}", file=sys.stderr)
        return EXIT_TLS
    except (EndpointError, ValueError, OSError) as error:
        print(f"loadtest.py: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as error:
        print(f"loadtest.py: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        for path in cleanup:
            os.unlink(path)
    out = args.out or default_out_dir(endpoint.name, time.localtime())
    write_json(result, out / "figures.json")
    draw(result, out / "plot.png")
    for line in summary_lines(result):
        print(line)
    print(f"wrote {out / 'figures.json'} and {out / 'plot.png'}")
    for line in replica_failure_lines(result):
        print(f"loadtest.py: {line}", file=sys.stderr)
    if result["requests"] and result["transport_errors"].get("connect") == result["requests"]:
        print(f"loadtest.py: no connection to {endpoint.base_url}: check ingressAddress and "
              "ingressPort (pulumi stack output)", file=sys.stderr)
        return EXIT_UNREACHABLE
    status = refused_status(result)
    if status is not None:
        why = refusal(status, result["url"], endpoint.host, endpoint.served_name,
                      token_sent=token is not None)
        print(f"loadtest.py: {why}", file=sys.stderr)
        return EXIT_UNAUTHORIZED
    return 0


if __name__ == "__main__":
    sys.exit(main())
