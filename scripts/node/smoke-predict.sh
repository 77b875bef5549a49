#!/usr/bin/env bash
# Runs on the control plane after a model is Ready: send the V1 request on
# stdin through the Istio ingress gateway's node port, print the response.
# METHOD=GET asks for the model's V1 status instead (no body), for models whose
# input this project cannot know. With TOKEN_ON_STDIN=1 the first line of stdin
# is the model's token: it is sent as `Authorization: Bearer` from a private
# file, never on a command line. With CA_ON_STDIN=1 the line before it is the
# CA certificate (PEM, base64 on one line) that the https URL's certificate must
# chain to, and RESOLVE (host:port:address) points the URL's host at the node.
#
# Inputs (environment): URL, HOST_HEADER, ATTEMPTS, METHOD (POST or GET), TOKEN_ON_STDIN,
# CA_ON_STDIN, RESOLVE.
set -euo pipefail
SCRIPT_NAME=smoke-predict
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${URL:?}" "${HOST_HEADER:?}" "${ATTEMPTS:=30}" "${METHOD:=POST}" "${TOKEN_ON_STDIN:=0}" "${CA_ON_STDIN:=0}" "${RESOLVE:=}"
umask 077
body=$(mktemp)
trap 'rm -f "$body" "$body.out" "$body.headers" "$body.ca"' EXIT
: >"$body.headers"
tls=()
if [ "$CA_ON_STDIN" = 1 ]; then
  IFS= read -r ca || die "CA_ON_STDIN=1 but stdin is empty"
  printf '%s' "$ca" | base64 -d >"$body.ca" || die "the CA line on stdin is not base64"
  tls=(--cacert "$body.ca")
fi
if [ -n "$RESOLVE" ]; then
  tls+=(--resolve "$RESOLVE")
fi
if [ "$TOKEN_ON_STDIN" = 1 ]; then
  IFS= read -r token || die "TOKEN_ON_STDIN=1 but stdin is empty"
  printf 'Authorization: Bearer %s\n' "$token" >"$body.headers"
  unset token
fi
request=(-H "Host: ${HOST_HEADER}" -H "@${body}.headers" "${tls[@]}")
if [ "$METHOD" = POST ]; then
  cat >"$body"
  request+=(-H 'Content-Type: application/json' --data-binary "@${body}")
fi
for attempt in $(seq 1 "$ATTEMPTS"); do
  # A model that just became Ready can answer 503 for a moment while its route settles.
  status=$(curl -sS -o "$body.out" -w '%{http_code}' --max-time 60 \
             "${request[@]}" "$URL" || echo 000)
  if [ "$status" = 200 ]; then
    cat "$body.out"
    exit 0
  fi
  log "attempt ${attempt}: HTTP ${status} from ${URL} (Host: ${HOST_HEADER}); retrying" >&2
  sleep 10
done
hint=""
case "$status" in
  401) hint=" The gateway refused the token (expired, or signed by a replaced key)." ;;
  403) hint=" The gateway denied the request: the model needs a token of its project." ;;
esac
die "no prediction from ${URL} with Host ${HOST_HEADER} after ${ATTEMPTS} attempts (last HTTP ${status}: $(head -c 300 "$body.out" 2>/dev/null)).${hint}"
