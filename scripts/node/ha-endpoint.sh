#!/usr/bin/env bash
# The virtual IP of the API servers on this control plane: haproxy and keepalived
# from Ubuntu's archive (pinned, held), their config (rendered by
# components/cluster/ha_endpoint.py), and keepalived's check of the local haproxy.
# Runs before kubeadm init or join. Safe to run again: a service restarts only
# when its config changed.
#
# Inputs (environment): VIRTUAL_IP, HAPROXY_PORT, INTERFACE (empty: the interface
# of the route to VIRTUAL_IP), KEEPALIVED_VERSION, HAPROXY_VERSION,
# HAPROXY_CONFIG, KEEPALIVED_CONFIG.
set -euo pipefail
SCRIPT_NAME=ha-endpoint
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${VIRTUAL_IP:?}" "${HAPROXY_PORT:?}" "${KEEPALIVED_VERSION:?}" "${HAPROXY_VERSION:?}"
: "${HAPROXY_CONFIG:?}" "${KEEPALIVED_CONFIG:?}"
INTERFACE=${INTERFACE:-}
CHECK_SCRIPT=/etc/keepalived/kserve-check-haproxy.sh

installed() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | sed -n 's/^install ok installed //p'; }
# shellcheck disable=SC2053  # the pinned haproxy version is an apt pattern: match it as one
if [[ "$(installed haproxy)" != $HAPROXY_VERSION ]] || [ "$(installed keepalived)" != "$KEEPALIVED_VERSION" ]; then
  log "installing haproxy ${HAPROXY_VERSION} and keepalived ${KEEPALIVED_VERSION}"
  apt_get update
  apt_get install --allow-change-held-packages "haproxy=${HAPROXY_VERSION}" \
    "keepalived=${KEEPALIVED_VERSION}"
fi
apt-mark hold haproxy keepalived >/dev/null

if [ -z "$INTERFACE" ]; then
  # On the node that holds the virtual IP already (a re-run) the route to it is
  # local, through lo: the interface is then the one that carries the address.
  INTERFACE=$(ip -o addr show to "$VIRTUAL_IP" 2>/dev/null | awk '$2 != "lo" {print $2; exit}')
  [ -n "$INTERFACE" ] || INTERFACE=$(ip -o route get "$VIRTUAL_IP" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n1)
  [ -n "$INTERFACE" ] || die "no route from this node to the virtual IP ${VIRTUAL_IP}. Set kubernetes.highAvailability.interface to the interface on the nodes' network, or fix kubernetes.highAvailability.virtualIP."
fi
# keepalived refuses it ("cannot use a loopback interface (lo) for vrrp").
[ "$INTERFACE" != lo ] || die "the route from this node to the virtual IP ${VIRTUAL_IP} goes through the loopback interface lo, where keepalived cannot run VRRP (the address is local to this node?). Set kubernetes.highAvailability.interface to the interface on the nodes' network, or give a virtualIP on that network."
ip link show "$INTERFACE" >/dev/null 2>&1 \
  || die "interface '${INTERFACE}' does not exist on this node. Set kubernetes.highAvailability.interface to the interface on the nodes' network (ip -br link lists them)."

# keepalived runs this as root every 3 s: healthy when the local haproxy takes
# a connection and passes it to an API server that is ready.
write_if_changed "$CHECK_SCRIPT" 0755 <<'EOF' || true
#!/bin/sh
# Written by kserve-cluster (scripts/node/ha-endpoint.sh).
exec curl -sfk --max-time 3 -o /dev/null "https://127.0.0.1:$1/readyz"
EOF

if printf '%s\n' "$HAPROXY_CONFIG" | write_if_changed /etc/haproxy/haproxy.cfg 0644; then
  haproxy -c -q -f /etc/haproxy/haproxy.cfg || die "haproxy refuses the config written to /etc/haproxy/haproxy.cfg (output above)."
  log "haproxy config changed: restarting haproxy"
  systemctl enable haproxy >/dev/null 2>&1
  systemctl restart haproxy
fi
systemctl is-active --quiet haproxy || { systemctl enable haproxy >/dev/null 2>&1; systemctl start haproxy; }

if printf '%s\n' "$KEEPALIVED_CONFIG" | sed "s/@INTERFACE@/${INTERFACE}/" \
    | write_if_changed /etc/keepalived/keepalived.conf 0644; then
  log "keepalived config changed (interface ${INTERFACE}): restarting keepalived"
  systemctl enable keepalived >/dev/null 2>&1
  systemctl restart keepalived
fi
systemctl is-active --quiet keepalived || { systemctl enable keepalived >/dev/null 2>&1; systemctl start keepalived; }

if ip -o addr show dev "$INTERFACE" | grep -qF " ${VIRTUAL_IP}/"; then
  log "this node holds the virtual IP ${VIRTUAL_IP} (haproxy on port ${HAPROXY_PORT})"
else
  log "haproxy on port ${HAPROXY_PORT} and keepalived are running; another control plane holds ${VIRTUAL_IP}"
fi
