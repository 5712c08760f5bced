"""Fetching an image URL once, at import, so the record never depends on a third party's
server. Guarded: a size limit, a timeout, no redirect to another host, and no host that
resolves to a loopback, private or link-local address unless EXPERTLOOP_FETCH_HOSTS lists it.

The address is checked after resolving and the connection goes to that very address, so a
name that resolves differently the second time (DNS rebinding) cannot slip past the check."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from urllib.parse import urljoin, urlsplit

from core.ports import ImageRefused

MAX_REDIRECTS = 3
CHUNK = 1 << 16


class GuardedFetcher:
    def __init__(self, allowed_hosts: frozenset[str] = frozenset(), timeout_s: float = 30.0
                 ) -> None:
        self.allowed = allowed_hosts  # "host" or "host:port", lower case
        self.timeout_s = timeout_s

    def fetch(self, url: str, limit: int) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        first = urlsplit(url)
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if (parts.scheme, parts.hostname, parts.port) != \
                    (first.scheme, first.hostname, first.port):
                raise ImageRefused(f"redirected to another host ({parts.hostname}); "
                                   "only redirects within the same host are followed")
            response, connection = self._get(url, deadline)
            try:
                location = response.getheader("Location")
                if response.status in (301, 302, 303, 307, 308) and location:
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise ImageRefused(f"the server answered HTTP {response.status}")
                return _read(response, limit, deadline)
            finally:
                connection.close()
        raise ImageRefused(f"more than {MAX_REDIRECTS} redirects")

    def _get(self, url: str, deadline: float
             ) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = self._address(host, port)
        left = max(deadline - time.monotonic(), 0.001)
        connection = (_PinnedHTTPS(host, port, address, left) if parts.scheme == "https"
                      else _PinnedHTTP(host, port, address, left))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("GET", path, headers={"User-Agent": "expertloop-import",
                                                     "Accept": "image/*"})
            return connection.getresponse(), connection
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise ImageRefused(f"cannot fetch {url}: {exc}") from exc

    def _address(self, host: str, port: int) -> str:
        """The first resolved address, refused when it is not public and the host is not
        listed. Every resolved address is checked: one private answer refuses the host."""
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ImageRefused(f"cannot resolve {host}: {exc}") from exc
        listed = host.lower() in self.allowed or f"{host.lower()}:{port}" in self.allowed
        for *_, sockaddr in found:
            address = ipaddress.ip_address(sockaddr[0])
            if not listed and not address.is_global:
                raise ImageRefused(f"{host} resolves to {address}, a {_what(address)} address; "
                                   "list the host in EXPERTLOOP_FETCH_HOSTS to allow it")
        return str(found[0][4][0])


def _what(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    return "private" if address.is_private else "non-public"


def _read(response: http.client.HTTPResponse, limit: int, deadline: float) -> bytes:
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise ImageRefused(f"the server says {int(length)} bytes, over the {limit} allowed")
    chunks, total = [], 0
    while chunk := response.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise ImageRefused(f"more than the {limit} bytes an image may have")
        if time.monotonic() > deadline:
            raise ImageRefused("the fetch took longer than its timeout")
        chunks.append(chunk)
    return b"".join(chunks)


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
