"""haproxy and keepalived configuration for the virtual IP, built per control plane.

Pure: no Pulumi. scripts/node/ha-endpoint.sh installs both packages and these
files on every control plane before kubeadm init or join.

- haproxy listens on `port` on every control plane and sends each connection to
  an API server that answers `GET /readyz` with 200 (checked over TLS, without
  verifying the serving certificate: the check asks nothing secret).
- keepalived holds the virtual IP on one control plane. Priorities fall in list
  order (the first control plane, which runs `kubeadm init`, holds it first),
  ten apart; a failing check of the local haproxy takes 50 off, so any healthy
  node outranks every unhealthy one, and when all checks fail (before the first
  API server is up) the order, and so the address, stays where it is.
- VRRP adverts go unicast to the other control planes: no multicast needed on
  the network, and a keepalived elsewhere on it is never a peer. A lone control
  plane (the first step of growing to three) has no peer, and no unicast keyword:
  keepalived refuses an empty peer list.
"""
from __future__ import annotations

from typing import Sequence

from components.cluster.high_availability import HighAvailability
from components.stack_config import API_SERVER_PORT, Node

CHECK_SCRIPT = "/etc/keepalived/kserve-check-haproxy.sh"
INTERFACE_PLACEHOLDER = "@INTERFACE@"  # ha-endpoint.sh puts the interface in
TOP_PRIORITY = 150
PRIORITY_STEP = 10
CHECK_WEIGHT = -50  # more than the spread of 5 priorities: a healthy node always wins


def _host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def render_haproxy_config(ha: HighAvailability, control_planes: Sequence[Node]) -> str:
    bind = f":::{ha.port} v4v6" if ":" in ha.virtual_ip else f"*:{ha.port}"
    servers = [f"    server {n.name} {_host_port(n.address, API_SERVER_PORT)} check"
               for n in control_planes]
    return "\n".join([
        "# Written by kserve-cluster (scripts/node/ha-endpoint.sh): the API servers",
        "# behind the virtual IP. Changes here are overwritten by the next pulumi up.",
        "global",
        "    log /dev/log local0",
        "    daemon",
        "    maxconn 4000",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option tcplog",
        "    option dontlognull",
        "    timeout connect 5s",
        # Watches stay open for minutes: do not cut them every few seconds.
        "    timeout client 1h",
        "    timeout server 1h",
        "",
        "frontend kube-apiserver",
        f"    bind {bind}",
        "    default_backend kube-apiserver",
        "",
        "backend kube-apiserver",
        "    balance roundrobin",
        "    option httpchk",
        "    http-check connect ssl",
        "    http-check send meth GET uri /readyz",
        "    http-check expect status 200",
        "    default-server inter 2s fall 3 rise 2 verify none",
        *servers,
        "",
    ])


def priority(index: int) -> int:
    """keepalived priority of the control plane at `index` in stack order."""
    return TOP_PRIORITY - PRIORITY_STEP * index


def render_keepalived_config(ha: HighAvailability, node: Node,
                             control_planes: Sequence[Node]) -> str:
    """keepalived.conf for `node`. Without `interface` in the stack the file
    holds INTERFACE_PLACEHOLDER, which the node script replaces with the
    interface of its route to the virtual IP."""
    index = [n.name for n in control_planes].index(node.name)
    peers = [f"        {n.address}" for n in control_planes if n.name != node.name]
    return "\n".join([
        "# Written by kserve-cluster (scripts/node/ha-endpoint.sh): the virtual IP",
        "# of the API servers. Changes here are overwritten by the next pulumi up.",
        "global_defs {",
        f"    router_id kserve-{node.name}",
        "    enable_script_security",
        "    script_user root",
        "}",
        "",
        "vrrp_script check_haproxy {",
        f'    script "{CHECK_SCRIPT} {ha.port}"',
        "    interval 3",
        "    timeout 5",
        "    fall 3",
        "    rise 2",
        f"    weight {CHECK_WEIGHT}",
        "}",
        "",
        "vrrp_instance kserve_api {",
        "    state BACKUP",
        f"    interface {ha.interface or INTERFACE_PLACEHOLDER}",
        f"    virtual_router_id {ha.router_id}",
        f"    priority {priority(index)}",
        "    advert_int 1",
        # keepalived -t refuses unicast keywords without a peer (exit 5: "unicast
        # keyword ... without any unicast peers"): one control plane, the first
        # step of growing to three, has none and sends its adverts nowhere else.
        *([f"    unicast_src_ip {node.address}", "    unicast_peer {", *peers, "    }"]
          if peers else []),
        "    virtual_ipaddress {",
        f"        {ha.virtual_ip}/{ha.prefix_length}",
        "    }",
        "    track_script {",
        "        check_haproxy",
        "    }",
        "}",
        "",
    ])


def endpoint_inputs(ha: HighAvailability, node: Node, control_planes: Sequence[Node],
                    keepalived_version: str, haproxy_version: str) -> dict[str, str]:
    """The inputs of scripts/node/ha-endpoint.sh on `node`: each is also what
    makes it run again when it changes."""
    return {
        "VIRTUAL_IP": ha.virtual_ip,
        "HAPROXY_PORT": str(ha.port),
        "INTERFACE": ha.interface or "",
        "KEEPALIVED_VERSION": keepalived_version,
        "HAPROXY_VERSION": haproxy_version,
        "HAPROXY_CONFIG": render_haproxy_config(ha, control_planes),
        "KEEPALIVED_CONFIG": render_keepalived_config(ha, node, control_planes),
    }
