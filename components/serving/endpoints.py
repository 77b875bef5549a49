"""Where and how the tools call a model through the ingress gateway.

`scripts/predict.py` and `scripts/loadtest.py` both pick a model of a stack file
(`NAME` or `NAMESPACE/NAME`), send to the control plane's address and the ingress
node port with the model's Host header, address it by the name its server
answers to (TorchServe's `model_snapshot` name, not the InferenceService's), and
send a project token where the model needs one; when the gateway refuses it,
both explain why in the same words (`refusal`).
"""
from __future__ import annotations

import sys

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from components.access.ingress_policies import USE_HTTPS
from components.serving import huggingface, openai_protocol
from components.serving.config import Model, ServingConfig
from components.serving.v1_protocol import model_host
from components.stack_file import parse_stack_file, print_warnings

TOKEN_ENV = "KSERVE_TOKEN"
TOKENS_HINT = "pulumi stack output tokens --show-secrets"


class EndpointError(Exception):
    """A model that cannot be chosen, a token or file that cannot be read: a usage error."""


class TokenNeeded(EndpointError):
    """The model is protected and no token was given."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str                     # http(s)://<address>:<node port>
    host: str                         # the Host header the ingress routes on
    name: str                         # the InferenceService
    served_name: str                  # the name in /v1/models/<name>
    namespace: Optional[str] = None
    model: Optional[Model] = None     # when read from a stack file
    serving: Optional[ServingConfig] = None
    project: Optional[str] = None     # the project whose token the model needs

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def elsewhere(self, url: Optional[str], host: Optional[str]) -> "Endpoint":
        """The same model through another address or Host header (--url, --host)."""
        return Endpoint(url or self.base_url, host or self.host, self.name, self.served_name,
                        self.namespace, self.model, self.serving, self.project)


def choose_model(models: Sequence[Model], wanted: Optional[str], stack: str) -> Model:
    """`NAMESPACE/NAME`, or `NAME` when only one namespace has it; the first model
    when nothing is asked for."""
    if not models:
        raise EndpointError(f"stack {stack} declares no model")
    if not wanted:
        return models[0]
    found = [m for m in models if wanted in (m.key, m.name)]
    if len(found) == 1:
        return found[0]
    if found:
        raise EndpointError(f"model {wanted!r} is in several namespaces of stack {stack}: "
                            f"{', '.join(m.key for m in found)}; give NAMESPACE/NAME")
    raise EndpointError(f"stack {stack} has no model {wanted!r}; it has: "
                        f"{', '.join(m.key for m in models)}")


def from_stack(stack: str, wanted: Optional[str], stacks_dir: Optional[Path] = None,
               tool: str = "", https: bool = False) -> Endpoint:
    """The model's endpoint from stacks/Pulumi.<stack>.yaml (no SSH key or CLI needed).
    In Serverless a model that needs a token is called over https (the gateway refuses
    its hosts on port 80), and so is any model when `https` (a CA file was given); in
    RawDeployment the gateway has no TLS and every model is on http."""
    config = parse_stack_file(stack, stacks_dir, path_exists=lambda _: True)
    if tool:
        print_warnings(config, tool)
    serving = config.serving
    model = choose_model(serving.models, wanted, stack)
    address = config.control_plane.address
    bracketed = f"[{address}]" if ":" in address else address
    over_https = serving.serverless and (https or config.access.protects(model))
    return Endpoint(
        base_url=f"https://{bracketed}:{serving.https_node_port}" if over_https else
        f"http://{bracketed}:{serving.ingress_node_port}",
        host=model_host(serving.deployment_mode, model.name, model.namespace,
                        serving.ingress_domain),
        name=model.name, served_name=model.served_name, namespace=model.namespace,
        model=model, serving=serving,
        project=model.namespace if config.access.protects(model) else None)


def given(url: str, host: str, wanted: str) -> Endpoint:
    """An endpoint given outright: `NAME` or `NAMESPACE/NAME`, addressed by that name."""
    namespace, _, name = wanted.rpartition("/")
    return Endpoint(url, host, name, name, namespace or None)


def from_outputs(models: Mapping[str, Mapping], key: str) -> Endpoint:
    """A model's endpoint from the stack output `models` (keyed `namespace/name`): its
    URL's address and port, its Host header, the name its server answers to
    (`servedModels`, else the model's name) and, where `needsToken`, its project.
    A model marked `httpsOnly` (protected, Serverless) is called at the same address
    on the port of its `httpsUrl`, over https."""
    entry = models[key]
    url = str(entry["url"])
    scheme, _, rest = url.partition("://")
    base_url = f"{scheme}://{rest.split('/', 1)[0]}"
    if entry.get("httpsOnly"):
        https_port = str(entry["httpsUrl"]).split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
        address = rest.split("/", 1)[0].rsplit(":", 1)[0]
        base_url = f"https://{address}:{https_port}"
    served = list(entry.get("servedModels") or [entry["name"]])
    return Endpoint(base_url=base_url, host=str(entry["host"]), name=str(entry["name"]),
                    served_name=served[0], namespace=entry.get("namespace"),
                    project=entry.get("project") if entry.get("needsToken") else None)


def openai_model(endpoint: Endpoint, tool: str) -> str:
    """The `model` of an OpenAI request to this endpoint: the name the Hugging Face
    runtime registered (the InferenceService's). A model the stack file declares in
    another format, or on a custom runtime, is refused before anything is sent; an
    endpoint given outright (--url, --host) is taken as it is."""
    model = endpoint.model
    if model is not None and not huggingface.served_by_cluster_runtime(model):
        why = (f"runs on the custom runtime {model.runtime!r}" if model.runtime
               else f"is format {model.format!r}")
        raise EndpointError(
            f"--openai: model {endpoint.label!r} {why}; only huggingface models on KServe's "
            f"Hugging Face runtime ({huggingface.CLUSTER_RUNTIME}) serve the OpenAI endpoints. "
            f"Leave out --openai for this model, or pick a huggingface model with --model "
            f"({tool} sends it {', '.join(openai_protocol.PATHS.values())}).")
    return endpoint.served_name


def token_from_outputs(endpoint: Endpoint, tokens: Optional[Mapping[str, str]]) -> Optional[str]:
    """One of the model's project's tokens from the stack output `tokens` (keyed
    `project/token`), the first by name; None for a model that needs none."""
    if not endpoint.project:
        return None
    mine = sorted(k for k in (tokens or {}) if k.partition("/")[0] == endpoint.project)
    if not mine:
        raise TokenNeeded(f"model {endpoint.label!r} needs a token of project {endpoint.project}, "
                          "and the stack output `tokens` has none")
    return str(tokens[mine[0]])


def read_token(token: Optional[str], token_file: Optional[Path],
               environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The token from --token-file, else --token, else $KSERVE_TOKEN; None when none."""
    if token and token_file:
        raise EndpointError("give --token or --token-file, not both")
    if token_file is not None:
        try:
            text = Path(token_file).expanduser().read_text().strip()
        except OSError as error:
            raise EndpointError(f"cannot read the token file {token_file}: {error.strerror}") \
                from None
        if not text:
            raise EndpointError(f"the token file {token_file} is empty")
        return text
    if token:
        return token.strip()
    value = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
    return value or None


def require_token(endpoint: Endpoint, token: Optional[str], stack: Optional[str]) -> None:
    """Refuse, before sending anything, to call a protected model without a token."""
    if endpoint.project and not token:
        raise TokenNeeded(
            f"model {endpoint.label!r} is in project {endpoint.project} and needs one of its "
            f"tokens: {TOKENS_HINT}" + (f" --stack {stack}" if stack else "") +
            f", then pass the `{endpoint.project}/<name>` value with --token-file FILE or "
            f"{TOKEN_ENV}.")


def from_stack_with_token(stack: str, wanted: Optional[str], stacks_dir: Optional[Path], tool: str,
                          token: Optional[str], https: bool) -> tuple[Endpoint, Optional[str]]:
    """The model's endpoint from the stack file, and the token to send to it: a
    protected model without one is refused (`require_token`), and a model the stack
    says needs none gets none (a $KSERVE_TOKEN is not sent where it is not needed)."""
    endpoint = from_stack(stack, wanted, stacks_dir, tool, https=https)
    require_token(endpoint, token, stack)
    if token and not endpoint.project:
        print(f"{tool}: model {endpoint.label!r} needs no token: none is sent", file=sys.stderr)
        token = None
    return endpoint, token


HTTPS_HINT = ("the gateway's HTTPS node port, output ingressHttpsPort, with --ca-file and "
              "the stack's CA from ingressCaCertificate")


def refusal(status: int, url: str, host: str, model: str, token_sent: bool,
            body: str = "") -> Optional[str]:
    """Why the ingress gateway refused a request (HTTP 401 or 403) and what to do;
    None for any other status. Names no token: only whether one was sent. `body`:
    the gateway's answer, which says "use https" where a protected model was called
    over plain http (components/access/ingress_policies.py, https_only_reply_spec)."""
    if status == 401:
        return (f"the gateway refused the token (HTTP 401 from {url}): it has expired, is "
                "malformed, or was signed by a key that has since been replaced "
                f"(access.signingKeyGeneration). Get a current one: {TOKENS_HINT}.")
    if status == 403:
        denied = f"access to model {model!r} denied (HTTP 403 from {url}, Host {host})"
        plain_http = url.startswith("http:")
        if plain_http and USE_HTTPS in body:
            # The gateway says so itself: the model is protected, http is refused token or not.
            leaked = ("; the token went over the network in clear: if the network is not "
                      "trusted, replace it (give it another `expires` day)" if token_sent else "")
            return (f"{denied}: use https: the model is protected and answers over https "
                    f"only ({HTTPS_HINT}){leaked}.")
        why = ("the token sent is not one of this model's project (or was removed from the "
               "stack file)" if token_sent else
               f"no token was sent; give one of the project's tokens with --token-file or "
               f"{TOKEN_ENV} ({TOKENS_HINT})")
        if plain_http:
            why += ("; or, if the model is protected in a Serverless stack, use https: it "
                    f"answers over https only ({HTTPS_HINT})")
        return f"{denied}: {why}."
    return None
