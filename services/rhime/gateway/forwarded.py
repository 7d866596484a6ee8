"""Who the client is, for rate limits and for the components behind the gateway.

Only a hop the gateway trusts may name the client:
- a Rhime component (the web, calling on behalf of a browser) with the signed
  `x-rhime-client` header, which only holders of the internal secret can produce;
- a proxy whose address is in `trusted_proxies` (an Ingress controller, a load balancer), through
  X-Forwarded-For: the right-most entry that is not itself a trusted proxy, since everything left
  of it was written by the client.
Otherwise the client is the TCP peer, whatever headers it sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import jwt
from multidict import CIMultiDict
from starlette.types import Scope

from rhime.kit import client_address

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Resolver:
    def __init__(self, *, trusted_proxies: Sequence[Network], internal_secret: str) -> None:
        self.trusted = tuple(trusted_proxies)
        self.secret = internal_secret

    def client(self, scope: Scope, headers: CIMultiDict[str]) -> str:
        signed = headers.get(client_address.HEADER)
        if signed:
            try:
                return client_address.decode(signed, secret=self.secret)
            except jwt.InvalidTokenError:
                pass  # forged or stale: as if absent
        peer_info = scope.get("client")
        peer = str(peer_info[0]) if peer_info else "unknown"
        if not self.trusted or not self.is_trusted(peer):
            return peer
        hops = [h.strip() for v in headers.getall("x-forwarded-for", []) for h in v.split(",")]
        hop = peer
        for entry in reversed(hops):
            address = parse(entry)
            if address is None:
                break  # garbage a trusted proxy would not write: stop at the last good hop
            hop = str(address)
            if not self._trusted(address):
                return hop
        return hop

    def is_trusted(self, peer: str) -> bool:
        address = parse(peer)
        return address is not None and self._trusted(address)

    def _trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)


def parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
