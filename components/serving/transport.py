"""How scripts/predict.py and scripts/loadtest.py reach the gateway: HTTPS checked
against the stack's CA, no token over plain HTTP unless asked for, and no
`Authorization` carried across a redirect to another host.

The gateway's HTTPS server presents a certificate for the model's host
(`<name>.<namespace>.<domain>`), which usually does not resolve: the tools dial
the ingress address and check the certificate against the Host header (the TLS
server name, SNI), as `curl --resolve` does. The CA comes from `--ca-file` or
$KSERVE_CA_FILE (`pulumi stack output ingressCaCertificate > ca.pem`); without
one, the system's trusted CAs are used (an operator's own certificate from a
public CA, `serving.tls`).
"""
from __future__ import annotations

import http.client
import os
import ssl
import urllib.request
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

from components.serving.endpoints import EndpointError

CA_ENV = "KSERVE_CA_FILE"
CA_HINT = "pulumi stack output ingressCaCertificate > ca.pem"
INSECURE_FLAG = "--insecure-token-over-http"


class TlsError(Exception):
    """The gateway's certificate is not trusted, or the TLS handshake failed."""


def add_tls_arguments(parser) -> None:
    """The TLS options predict.py and loadtest.py share: `--ca-file` and INSECURE_FLAG."""
    parser.add_argument("--ca-file", type=Path,
                        help=f"the CA (PEM) the gateway's certificate must chain to (or ${CA_ENV}; "
                             f"{CA_HINT})")
    parser.add_argument(INSECURE_FLAG, dest="insecure_token_over_http", action="store_true",
                        help="send the token even over plain http (anyone on the path can read it)")


def ca_file_of(given: Optional[Path], environ: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """--ca-file, else $KSERVE_CA_FILE; None when neither."""
    if given is not None:
        return Path(given)
    value = (os.environ if environ is None else environ).get(CA_ENV, "").strip()
    return Path(value) if value else None


def tls_context(ca_file: Optional[Path]) -> ssl.SSLContext:
    """A client context that checks the certificate and its name: against the CA in
    `ca_file` (PEM) when given, else against the system's CAs."""
    context = ssl.create_default_context()
    if ca_file is not None:
        path = Path(ca_file).expanduser()
        try:
            pem = path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise EndpointError(f"cannot read the CA file {ca_file}: "
                                f"{getattr(error, 'strerror', None) or error}. Get it with: "
                                f"{CA_HINT}") from None
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise EndpointError(f"the CA file {ca_file} holds no PEM certificate. Get it with: "
                                f"{CA_HINT}")
        context = ssl.create_default_context(cadata=pem)
    return context


def server_name(host: str) -> str:
    """The TLS server name for a Host header: without a port, without IPv6 brackets."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def check_token_transport(base_url: str, token: Optional[str], allow_http: bool) -> None:
    """Refuse, before anything is sent, to send a token over plain HTTP."""
    if token and urlsplit(base_url).scheme == "http" and not allow_http:
        raise EndpointError(
            f"refusing to send a token over plain http ({base_url}): anyone on the path could "
            "read and reuse it. Call the gateway over https (an https:// --url, the stack's "
            f"https port with --stack; the CA: --ca-file FILE or ${CA_ENV}, from `{CA_HINT}`), "
            f"or, knowing the risk (a RawDeployment stack has no TLS at the gateway), "
            f"pass {INSECURE_FLAG}.")


def tls_failure(error: BaseException, url: str, host: str, ca_file: Optional[Path]) -> Optional[str]:
    """Why a TLS handshake failed, in words; None when `error` is not a TLS error."""
    if isinstance(error, ssl.SSLCertVerificationError):
        trusted = f"the CA in {ca_file}" if ca_file else "the system's trusted CAs"
        return (f"the gateway's certificate at {url} is not trusted for {server_name(host)} "
                f"({error.verify_message or error.reason}): it does not chain to {trusted}. "
                f"Give the stack's CA with --ca-file FILE or ${CA_ENV} ({CA_HINT}).")
    if isinstance(error, ssl.SSLError):
        return f"TLS with the gateway at {url} failed ({error.reason or error}); is it an https port?"
    return None


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """Dials the URL's address; checks the certificate against `tls_name`."""
    tls_name = ""

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.tls_name)


class _NamedHTTPSHandler(urllib.request.HTTPSHandler):
    """To the gateway's address (`dial`, host:port of the URL) the TLS name is the
    model's host; anywhere else (a redirect) it is the URL's own host."""

    def __init__(self, context: ssl.SSLContext, dial: str, tls_name: str):
        super().__init__(context=context)
        self.dial, self.tls_name = dial, tls_name

    def https_open(self, req):
        name = self.tls_name if req.host == self.dial else server_name(req.host)

        class Connection(_NamedHTTPSConnection):
            tls_name = name
        return self.do_open(Connection, req, context=self._context)


def _origin(url: str) -> tuple:
    parts = urlsplit(url)
    return (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))


class SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirect handler copies every header to the new request. Across
    origins (another host, port or scheme) the token and the Host header stay behind."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            for name in ("Authorization", "Host"):
                new.headers.pop(name, None)
                new.headers.pop(name.capitalize(), None)
                new.unredirected_hdrs.pop(name, None)
        return new


def opener(base_url: str, host: str,
           context: Optional[ssl.SSLContext] = None) -> urllib.request.OpenerDirector:
    """An opener for the gateway at `base_url`: https checked against `context` with
    `host` as the TLS name, and redirects that drop Authorization when they leave
    the origin."""
    return urllib.request.build_opener(
        SameHostRedirects(),
        _NamedHTTPSHandler(context or tls_context(None), urlsplit(base_url).netloc,
                           server_name(host)))
