"""The one outbound fetcher: jwks_uri, sector_identifier_uri, request_uri, logout URIs.

Every fetch has a deadline for the whole exchange, a size cap, no redirects, and refuses hosts
that resolve to private, loopback, link-local or otherwise reserved addresses (also when wrapped
in an IPv6 address) unless ALLOW_LOOPBACK_FETCH is on (development only). The connection is
pinned to the address that was checked, so a DNS answer that changes between check and connect
(rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from urllib.parse import urlsplit

import requests
import urllib3
from flask import current_app
from requests.adapters import HTTPAdapter


class FetchError(Exception):
    """The remote document could not be fetched safely; `str(error)` says why (no secrets)."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(addr) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64, compatible), if any."""
    if addr.version != 6:
        return None
    if addr.ipv4_mapped or addr.sixtofour:
        return addr.ipv4_mapped or addr.sixtofour
    if addr in _NAT64 or (int(addr) >> 32 == 0 and int(addr) > 1):  # ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _allowed_address(ip: str, allow_private: bool) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if allow_private:
        return not (addr.is_multicast or addr.is_unspecified)
    inner = _embedded_ipv4(addr)  # ::ffff:127.0.0.1 and friends reach the IPv4 host
    if inner is not None and not (inner.is_global and not inner.is_multicast):
        return False
    return addr.is_global and not addr.is_multicast


def resolve_checked(url: str, allow_private: bool) -> tuple[str, str, int]:
    """Return (scheme, ip, port) after refusing unsafe schemes and addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise FetchError("only https URLs can be fetched")
    if parts.scheme == "http" and not allow_private:
        raise FetchError("only https URLs can be fetched")
    if not parts.hostname or parts.username or parts.password:
        raise FetchError("URL has no usable host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("host does not resolve") from exc
    ips = sorted({info[4][0] for info in infos})
    if not ips or not all(_allowed_address(ip, allow_private) for ip in ips):
        raise FetchError("host resolves to a private or reserved address")
    return parts.scheme, ips[0], port


def _cut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _PinnedAdapter(HTTPAdapter):
    """Connects to the checked IP while keeping the hostname for TLS SNI and certificates."""

    def __init__(self, ip: str, **kwargs):
        self._ip = ip
        self._sockets: list = []  # kept here: http.client drops conn.sock before the body
        self._lock = threading.Lock()
        self.aborted = False
        super().__init__(**kwargs)

    def abort(self) -> None:
        """Cut every connection (called by the deadline timer): blocked reads end at once."""
        with self._lock:
            self.aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            _cut(sock)

    def _track(self, conn) -> None:
        real_connect = conn.connect

        def connect():
            real_connect()
            with self._lock:
                self._sockets.append(conn.sock)
                late = self.aborted  # the deadline passed while connecting
            if late:
                _cut(conn.sock)

        conn.connect = connect

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        ip = self._ip
        adapter = self
        orig = self.poolmanager.connection_from_host

        def connection_from_host(host, port=None, scheme="http", pool_kwargs=None):
            pool = orig(host, port, scheme, pool_kwargs)
            pool.conn_kw["socket_options"] = pool.conn_kw.get("socket_options", [])
            real_new_conn = pool._new_conn

            def _new_conn():
                conn = real_new_conn()
                conn._dns_host = ip  # urllib3 connects to _dns_host, verifies against host
                adapter._track(conn)
                return conn

            pool._new_conn = _new_conn
            return pool

        self.poolmanager.connection_from_host = connection_from_host


def fetch(url: str, *, accept: str = "application/json", method: str = "GET",
          data: dict | None = None) -> requests.Response:
    """Fetch `url` safely; the body is read up to FETCH_MAX_BYTES into `response.content`."""
    conf = current_app.config
    allow_private = bool(conf["ALLOW_LOOPBACK_FETCH"])
    _, ip, _ = resolve_checked(url, allow_private)
    session = requests.Session()
    session.trust_env = False  # no proxies or netrc from the environment
    adapter = _PinnedAdapter(ip, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    limit = int(conf["FETCH_MAX_BYTES"])
    # The socket timeout applies to each read; this deadline bounds the whole exchange
    # (connect, headers, body), so a server trickling bytes cannot hold a worker.
    deadline = threading.Timer(conf["FETCH_TIMEOUT"], adapter.abort)
    deadline.daemon = True
    deadline.start()
    try:
        with session.request(method, url, data=data, headers={"Accept": accept},
                             timeout=conf["FETCH_TIMEOUT"], allow_redirects=False,
                             stream=True) as response:
            body = bytearray()
            # read1 returns what has arrived instead of waiting for a full buffer.
            while chunk := response.raw.read1(16384, decode_content=True):
                body.extend(chunk)
                if len(body) > limit:
                    raise FetchError("response too large")
            if adapter.aborted:
                raise FetchError("response too slow")
            response._content = bytes(body)
            return response
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if adapter.aborted:
            raise FetchError("response too slow") from exc
        raise FetchError(f"fetch failed: {type(exc).__name__}") from exc
    finally:
        deadline.cancel()
        session.close()


def fetch_json(url: str):
    response = fetch(url)
    if response.status_code != 200:
        raise FetchError(f"unexpected status {response.status_code}")
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise FetchError("response is not JSON") from exc


def fetch_text(url: str, accept: str = "*/*") -> str:
    response = fetch(url, accept=accept)
    if response.status_code != 200:
        raise FetchError(f"unexpected status {response.status_code}")
    return response.content.decode("utf-8", errors="strict")
