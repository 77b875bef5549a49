"""`kubernetes.highAvailability`: the virtual IP in front of 1, 3 or 5 control planes.

Pure: no Pulumi. The virtual IP is served by keepalived (VRRP) and haproxy as OS
services on every control plane, the first option of kubeadm's HA guide
(kubernetes/kubeadm docs/ha-considerations.md). haproxy listens on its own port
(default 8443) because every API server already binds 6443 on the same hosts.

The nodes' subnet is not something the stack knows: it is the control planes'
addresses with `prefixLength` (default /24 for IPv4, /64 for IPv6), and the
virtual IP must lie inside it, since VRRP only moves an address on one link.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from components.problems import Problems, check_int, check_mapping, is_ip

KEY = "kubernetes.highAvailability"
KEYS = {"virtualIP", "interface", "prefixLength", "port", "virtualRouterId"}
DEFAULT_PORT = 8443
DEFAULT_ROUTER_ID = 51  # the kubeadm guide's example; two VRRP groups on one link need different ones
DEFAULT_PREFIX = {4: 24, 6: 64}
ALLOWED_CONTROL_PLANES = (1, 3, 5)
# Ports a control plane already listens on (API server, etcd, kubelet,
# controller-manager, scheduler): haproxy cannot have them.
TAKEN_PORTS = {2379, 2380, 6443, 10250, 10257, 10259}
_INTERFACE = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")  # a Linux interface name (IFNAMSIZ - 1)


@dataclass(frozen=True)
class HighAvailability:
    virtual_ip: str
    port: int = DEFAULT_PORT
    prefix_length: int = 24
    interface: Optional[str] = None  # None: each node takes the interface of its route to the VIP
    router_id: int = DEFAULT_ROUTER_ID

    @property
    def endpoint(self) -> str:
        host = f"[{self.virtual_ip}]" if ":" in self.virtual_ip else self.virtual_ip
        return f"{host}:{self.port}"


def parse_high_availability(problems: Problems, raw: Any,
                            control_plane_addresses: Sequence[tuple[str, str]],
                            all_addresses: Sequence[tuple[str, str]]) -> Optional[HighAvailability]:
    """`raw` is the value of kubernetes.highAvailability; the addresses are
    (node name, address) pairs, of the control planes and of every node."""
    if raw is None:
        return None
    ha = check_mapping(problems, KEY, raw,
                       "give {virtualIP: <free address in the nodes' subnet>}, optionally "
                       "interface, prefixLength, port, virtualRouterId.")
    if not ha:
        if isinstance(raw, dict):
            problems.required(f"{KEY}.virtualIP",
                              "give a free address in the control planes' subnet, e.g. 10.0.2.20.")
        return None
    problems.unknown_keys(KEY, ha, KEYS)
    vip = ha.get("virtualIP")
    port = check_int(problems, f"{KEY}.port", ha.get("port"), DEFAULT_PORT, 1, 65535,
                     f"use a free TCP port, e.g. {DEFAULT_PORT}, or remove the key for it.")
    if port in TAKEN_PORTS:
        problems.add(f"{KEY}.port", port,
                     "a control plane already listens on it (the API server binds 6443 on "
                     "every control plane, so haproxy cannot share it).",
                     f"use another port, e.g. {DEFAULT_PORT}, or remove the key for it.")
        port = DEFAULT_PORT
    router_id = check_int(problems, f"{KEY}.virtualRouterId", ha.get("virtualRouterId"),
                          DEFAULT_ROUTER_ID, 1, 255,
                          "give the VRRP group number, 1-255, that no other keepalived "
                          f"on this network uses, or remove the key for {DEFAULT_ROUTER_ID}.")
    interface = ha.get("interface")
    if interface is not None and (not isinstance(interface, str) or not _INTERFACE.match(interface)):
        problems.add(f"{KEY}.interface", interface, "not a network interface name.",
                     "give the control planes' interface on the nodes' network, e.g. eth0, "
                     "or remove the key to take the interface of the route to virtualIP.")
        interface = None
    if vip is None:
        problems.required(f"{KEY}.virtualIP",
                          "give a free address in the control planes' subnet, e.g. 10.0.2.20.")
        return None
    if not is_ip(vip):
        problems.add(f"{KEY}.virtualIP", vip, "not an IP address.",
                     "give a free address in the control planes' subnet, e.g. 10.0.2.20.")
        return None
    address = ipaddress.ip_address(vip)
    default_prefix = DEFAULT_PREFIX[address.version]
    prefix = check_int(problems, f"{KEY}.prefixLength", ha.get("prefixLength"), default_prefix,
                       8 if address.version == 4 else 16, address.max_prefixlen - 1,
                       f"give the nodes' network prefix length, e.g. {default_prefix} "
                       f"(a /{default_prefix} network), or remove the key for /{default_prefix}.")
    _check_address(problems, vip, prefix, control_plane_addresses, all_addresses)
    return HighAvailability(virtual_ip=vip, port=port, prefix_length=prefix,
                            interface=interface, router_id=router_id)


def _check_address(problems: Problems, vip: str, prefix: int,
                   control_planes: Sequence[tuple[str, str]],
                   nodes: Sequence[tuple[str, str]]) -> None:
    address = ipaddress.ip_address(vip)
    same = [name for name, node_address in nodes
            if is_ip(node_address) and ipaddress.ip_address(node_address) == address]
    if same:
        problems.add(f"{KEY}.virtualIP", vip,
                     f"is the address of node {', '.join(same)}; keepalived would take it "
                     "away from that node.",
                     "give a free address in the control planes' subnet, not a node's.")
        return
    outside = []
    for name, node_address in control_planes:
        if not is_ip(node_address):
            continue
        node_ip = ipaddress.ip_address(node_address)
        if node_ip.version != address.version or \
                address not in ipaddress.ip_network(f"{node_address}/{prefix}", strict=False):
            outside.append(f"{name} ({node_address})")
    if outside:
        networks = sorted({str(ipaddress.ip_network(f"{a}/{prefix}", strict=False))
                           for _, a in control_planes if is_ip(a)
                           and ipaddress.ip_address(a).version == address.version})
        problems.add(f"{KEY}.virtualIP", vip,
                     f"outside the /{prefix} subnet of control plane(s) {', '.join(outside)}; "
                     "VRRP can only move an address within one network.",
                     "give a free address in " + (" and ".join(networks) or "the control "
                     "planes' subnet") + ", or set kubernetes.highAvailability.prefixLength "
                     "to the nodes' real prefix length.")


def check_control_plane_count(problems: Problems, names: Sequence[str],
                              ha: Optional[HighAvailability], ha_given: bool) -> None:
    """1 to 5 control planes (even counts: see control_plane_change.py); more than one
    only behind a virtual IP."""
    count = len(names)
    if count == 0:
        problems.add("nodes", None, "found 0 control-plane nodes.",
                     "give one node (or three, or five, with kubernetes.highAvailability) "
                     "role: control-plane.")
        return
    if count > ALLOWED_CONTROL_PLANES[-1]:
        problems.add("nodes", list(names),
                     f"found {count} control-plane nodes; more than "
                     f"{ALLOWED_CONTROL_PLANES[-1]} etcd members only slow every write.",
                     "give 1, 3 or 5 nodes role: control-plane (remove one per run).")
        return
    # An even count (2, 4) is the step of removing one from an odd count, or a mistake:
    # which, only the last run's control planes say (components/cluster/
    # control_plane_change.py decides before any node is touched).
    if count > 1 and not ha_given:
        problems.add(KEY, None,
                     f"{count} control planes need one address in front of them (the "
                     "controlPlaneEndpoint every node and kubeconfig uses).",
                     "set kubernetes.highAvailability.virtualIP to a free address in the "
                     "control planes' subnet, e.g. {virtualIP: 10.0.2.20}.")
    if count == 1 and ha is not None:
        problems.warn(KEY, {"virtualIP": ha.virtual_ip},
                      "one control plane behind a virtual IP is not highly available; this is "
                      "only the first step of growing to three (or the last of shrinking).",
                      "add two nodes with role: control-plane next (docs/operations.md, "
                      "'Grow to three control planes').")
