"""Fetch an image from a client-supplied URL without becoming an SSRF proxy.

Every hop (the first URL and each redirect) is checked before any connection is made: scheme (https, or
http only when allowed), no credentials in the URL, an allowed port, and every address the host resolves
to must be public. The connection then goes to the address that was checked, not to a second lookup of
the name, so a DNS answer that changes between check and use (DNS rebinding) cannot reach inside.
Bodies are streamed with a byte cap and an overall deadline, and must have an image content type.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from .errors import ApiError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses the host resolves to.
Resolver = Callable[[str, int], Sequence[str]]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024
_LEGACY_IPV4 = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)
# IPv6 prefixes that embed an IPv4 address which the packet may end up at.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


@dataclass(frozen=True)
class UrlPolicy:
    max_bytes: int
    allow_http: bool = False
    # None allows any port; production keeps the default ports only.
    allowed_ports: frozenset[int] | None = frozenset({443, 80})
    max_redirects: int = 3
    timeout_seconds: float = 3.0
    # Non-public networks that may be fetched anyway. Always empty in the Lambda; tests use it to reach a
    # server on 127.0.0.1, which is the only way a non-public address gets through.
    allowed_private_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    content_type: str
    hops: int


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses, IPv4 embedded in IPv6 included."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_private
        and not address.is_reserved
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    # IPv4-compatible ::a.b.c.d (deprecated, but some stacks still route it).
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address `host` spells directly, including the legacy IPv4 forms (127.1, 0x7f.0.0.1, 2130706433)
    that socket libraries accept, so those never reach DNS and cannot dodge the checks."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


class UrlFetcher:
    def __init__(
        self,
        policy: UrlPolicy,
        *,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "dogbreed-api (+image url fetch)",
    ):
        self.policy = policy
        self._resolver = resolver
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._user_agent = user_agent

    def fetch(self, url: str) -> FetchedImage:
        deadline = time.monotonic() + self.policy.timeout_seconds
        current = url
        for hop in range(self.policy.max_redirects + 1):
            target = self._check_url(current)
            response_or_location = self._request(target, deadline)
            if isinstance(response_or_location, FetchedImage):
                return FetchedImage(response_or_location.data, response_or_location.content_type, hop)
            current = urljoin(current, response_or_location)
        raise ApiError("url_fetch_failed", f"The URL redirected more than {self.policy.max_redirects} times.")

    # -- checks ---------------------------------------------------------------------------------------

    def _check_url(self, url: str) -> _Target:
        if not isinstance(url, str) or not url:
            raise ApiError("invalid_request", "url must be a non-empty string.")
        if len(url) > 2048:
            raise ApiError("url_not_allowed", "The URL is longer than 2048 characters.")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ApiError("url_not_allowed", "The URL is not a valid absolute URL.") from None
        scheme = parts.scheme.lower()
        allowed_schemes = ("https", "http") if self.policy.allow_http else ("https",)
        if scheme not in allowed_schemes:
            allowed = " or ".join(allowed_schemes)
            raise ApiError("url_not_allowed", f"Only {allowed} URLs are accepted.")
        if parts.username is not None or parts.password is not None:
            raise ApiError("url_not_allowed", "URLs with credentials are not accepted.")
        host = parts.hostname
        if not host:
            raise ApiError("url_not_allowed", "The URL has no host.")
        port = port or (443 if scheme == "https" else 80)
        if self.policy.allowed_ports is not None and port not in self.policy.allowed_ports:
            raise ApiError("url_not_allowed", f"Port {port} is not allowed for image URLs.")

        literal = parse_ip_literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                ascii_host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise ApiError("url_not_allowed", "The URL's host name is not valid.") from None
            try:
                resolved = self._resolver(ascii_host, port)
            except (OSError, UnicodeError):
                raise ApiError("url_fetch_failed", "The URL's host name could not be resolved.") from None
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
            if not addresses:
                raise ApiError("url_fetch_failed", "The URL's host name could not be resolved.")
            host = ascii_host
        # Every address must pass: a name with one public and one private address is rejected,
        # not tried on the public one only.
        for address in addresses:
            if not self._address_allowed(address):
                raise ApiError(
                    "url_not_allowed", "The URL points to a private, loopback or otherwise non-public address."
                )
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return _Target(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))

    def _address_allowed(self, address: IPAddress) -> bool:
        if is_public_address(address):
            return True
        return any(address in network for network in self.policy.allowed_private_networks)

    # -- transfer -------------------------------------------------------------------------------------

    def _request(self, target: _Target, deadline: float) -> FetchedImage | str:
        connection = self._connect(target, deadline)
        try:
            connection.putrequest("GET", target.path, skip_accept_encoding=True)
            connection.putheader("User-Agent", self._user_agent)
            connection.putheader("Accept", "image/jpeg, image/png, image/webp, image/*;q=0.8")
            connection.putheader("Accept-Encoding", "identity")
            connection.putheader("Connection", "close")
            connection.endheaders()
            response = connection.getresponse()
            if response.status in _REDIRECT_STATUSES:
                location = response.getheader("Location")
                if not location:
                    raise ApiError("url_fetch_failed", f"The URL answered HTTP {response.status} without a Location.")
                return location
            if response.status != 200:
                raise ApiError("url_fetch_failed", f"The URL answered HTTP {response.status}, not 200.")
            content_type = (response.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()
            if not content_type.startswith("image/"):
                shown = content_type or "none"
                raise ApiError("url_fetch_failed", f"The URL did not return an image (content type {shown}).")
            encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
            if encoding not in ("identity", ""):
                raise ApiError("url_fetch_failed", f"The URL answered with Content-Encoding {encoding}.")
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.policy.max_bytes:
                raise self._too_large()
            data = self._read_capped(connection, response, deadline)
            return FetchedImage(data=data, content_type=content_type, hops=0)
        except TimeoutError:
            raise ApiError(
                "url_fetch_failed", f"The URL did not answer within {self.policy.timeout_seconds:g} s."
            ) from None
        except (OSError, http.client.HTTPException):
            raise ApiError("url_fetch_failed", "The image could not be downloaded from the URL.") from None
        finally:
            connection.close()

    def _connect(self, target: _Target, deadline: float) -> http.client.HTTPConnection:
        last_error: Exception | None = None
        for address in target.addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if target.scheme == "https":
                connection: http.client.HTTPConnection = _PinnedHTTPSConnection(
                    target.host, target.port, address=str(address), timeout=remaining, context=self._ssl_context
                )
            else:
                connection = _PinnedHTTPConnection(target.host, target.port, address=str(address), timeout=remaining)
            try:
                connection.connect()
                return connection
            except ssl.SSLError:
                connection.close()
                raise ApiError("url_fetch_failed", "The URL's TLS certificate could not be verified.") from None
            except OSError as exc:
                connection.close()
                last_error = exc
        if isinstance(last_error, TimeoutError) or last_error is None:
            raise ApiError("url_fetch_failed", f"The URL did not answer within {self.policy.timeout_seconds:g} s.")
        raise ApiError("url_fetch_failed", "Could not connect to the URL's host.")

    def _read_capped(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse, deadline: float
    ) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if connection.sock is not None:
                connection.sock.settimeout(remaining)
            chunk = response.read1(_CHUNK_BYTES) if hasattr(response, "read1") else response.read(_CHUNK_BYTES)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > self.policy.max_bytes:
                raise self._too_large()
            chunks.append(chunk)

    def _too_large(self) -> ApiError:
        limit = self.policy.max_bytes
        return ApiError(
            "payload_too_large", f"The image at the URL is over the limit of {limit} bytes ({limit / 1048576:.1f} MiB)."
        )


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to an address that was already checked, with the original host name in the Host header."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is still verified against the host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
