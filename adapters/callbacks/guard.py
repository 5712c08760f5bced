"""Where a callback may go: http(s) only, never this server itself, and never to a loopback,
private or link-local address unless EXPERTLOOP_CALLBACK_HOSTS lists the host. The check is
on the resolved address, when the ask is posted and again at every send: the sender connects
through `GuardedResolver`, so it reaches only addresses that passed, and a name that resolves
elsewhere the second time (DNS rebinding) cannot slip past the first check."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from pydantic import BaseModel

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}


class GuardSettings(BaseModel):
    allowed_hosts: frozenset[str] = frozenset()  # "host" or "host:port", lower case
    public_url: str = "http://127.0.0.1:8080"  # this server as others reach it
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080


class CallbackGuard:
    def __init__(self, settings: GuardSettings) -> None:
        self.settings = settings
        public = urlsplit(settings.public_url)
        self.public = (public.hostname or "", public.port or DEFAULT_PORTS.get(public.scheme, 80))

    async def refusal(self, url: str) -> str | None:
        """Why a callback may not go to `url` (resolving its host now), or None."""
        if why := self.url_refusal(url):
            return why
        parts = urlsplit(url)
        host, port = parts.hostname or "", _port(parts.scheme, parts.port)
        if _literal(host) is not None:  # url_refusal judged the address itself
            return None
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                 type=socket.SOCK_STREAM)
        except OSError as exc:
            return f"cannot resolve {host}: {exc}"
        for *_, sockaddr in found:
            if why := self.address_refusal(host, port, str(sockaddr[0])):
                return why
        return None

    def url_refusal(self, url: str) -> str | None:
        """What the URL alone says: its scheme, this server's own name, an IP literal's class.
        A host name is checked where it resolves (`refusal`, `GuardedResolver`)."""
        try:
            parts = urlsplit(url)
            port = _port(parts.scheme, parts.port)
        except ValueError as exc:
            return f"not a URL: {exc}"
        if parts.scheme not in DEFAULT_PORTS:
            return f"a callback URL is http or https, not {parts.scheme or 'schemeless'}"
        host = parts.hostname or ""
        if not host:
            return "a callback URL needs a host"
        if (host, port) == self.public:
            return "the callback URL points at this server itself"
        literal = _literal(host)
        return self.address_refusal(host, port, str(literal)) if literal else None

    def address_refusal(self, host: str, port: int, address: str) -> str | None:
        """One resolved address: this server's own listening socket is never a callback; a
        non-public one only for a listed host."""
        ip = _plain(ipaddress.ip_address(address.split("%", 1)[0]))
        own = ip.is_loopback or ip.is_unspecified or address == self.settings.listen_host
        if own and port == self.settings.listen_port:
            return "the callback URL points at this server itself"
        allowed = self.settings.allowed_hosts
        if ip.is_global or host in allowed or f"{host}:{port}" in allowed:
            return None
        return (f"{host} resolves to {ip}, a {_what(ip)} address; list the host in "
                "EXPERTLOOP_CALLBACK_HOSTS to allow it")

    def resolver(self) -> GuardedResolver:
        return GuardedResolver(self)


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded resolver, refusing a name with any address the guard refuses: the
    connection then goes to the very addresses checked. (aiohttp does not call a resolver for
    an IP literal: `url_refusal` checks those.)"""

    def __init__(self, guard: CallbackGuard) -> None:
        self.guard = guard
        self.inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        for result in found:
            if why := self.guard.address_refusal(host.lower(), port, result["host"]):
                raise OSError(errno.EACCES, why)
        return found

    async def close(self) -> None:
        await self.inner.close()


def _port(scheme: str, port: int | None) -> int:
    return port or DEFAULT_PORTS.get(scheme, 80)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _plain(ip: Address) -> Address:
    """::ffff:127.0.0.1 is 127.0.0.1 to the kernel, so it is judged as that."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _what(ip: Address) -> str:
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    return "private" if ip.is_private else "non-public"
