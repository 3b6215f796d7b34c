"""What the HTTP client writes and reads, without I/O: where a URL goes, the request head, and
the response headers it acts on (providers.http.client does the I/O)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from providers.http.errors import BadRequest, ConnectFailed, UnsupportedEncoding, UnsupportedProxy

# Written by the client itself. accept-encoding: identity, as nothing here decompresses a body.
_OWN_HEADERS = frozenset({"host", "content-length", "user-agent", "accept-encoding"})
_LINE_BREAKS = frozenset("\r\n")


@dataclass(frozen=True, slots=True)
class Route:
    """Where a connection goes: the origin, and the proxy it goes through (pool key)."""

    scheme: str
    host: str
    port: int
    proxy: str | None


def check_proxy(url: str) -> None:
    """UnsupportedProxy unless ``url`` is an http:// proxy (checked at start-up, and again at use).
    The message never repeats the URL, which may hold credentials."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise UnsupportedProxy("the proxy URL must be http://host:port (https:// proxies are not supported)")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request shape worked out: where it goes, and its head up to the content length."""

    route: Route
    head: bytes


def prepare(method: str, url: str, headers: Mapping[str, str], proxy: str | None) -> Prepared:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConnectFailed(f"unsupported URL scheme or host: {scheme}")
    port = parts.port or (443 if scheme == "https" else 80)
    route = Route(scheme, parts.hostname, port, proxy)
    authority = authority_of(route.host, parts.port)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if proxy is not None and scheme == "http":
        target = f"http://{authority}{target}"  # absolute-form, to a forward proxy
        headers = {**headers, **proxy_auth(proxy)}
    return Prepared(route, request_head(method, target, authority, headers))


def request_head(method: str, target: str, host: str, headers: Mapping[str, str]) -> bytes:
    """The request head's lines, each ending in CRLF, without the blank line that ends the head;
    BadRequest for what cannot be written (header values never shown)."""
    request_line = f"{method} {target} HTTP/1.1"
    if not (request_line + host).isascii():
        raise BadRequest("the request URL contains a character that is not ASCII")
    lines = [request_line, f"host: {host}", "user-agent: tokenwire", "accept-encoding: identity"]
    for name, value in headers.items():
        if name.lower() in _OWN_HEADERS:
            continue
        if _LINE_BREAKS.intersection(name) or _LINE_BREAKS.intersection(value):
            # e.g. a key read from a file with its newline: it would split the request
            raise BadRequest(f"the request header {name!r} contains a line break")
        if not (name + value).isascii():
            raise BadRequest(f"the request header {name!r} contains a character that is not ASCII")
        lines.append(f"{name}: {value}")
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def keepalive_timeout(headers: Mapping[str, str]) -> int | None:
    """The seconds a server keeps an idle connection open, from ``Keep-Alive: timeout=N``."""
    given = headers.get("keep-alive")
    if given is None:  # the usual case, on every exchange
        return None
    for param in given.split(","):
        name, _, value = param.partition("=")
        if name.strip().lower() == "timeout" and value.strip().isdecimal():
            return int(value)
    return None


def check_encoding(headers: Mapping[str, str]) -> None:
    encoding = headers.get("content-encoding")
    if encoding is None:  # the usual case, on every exchange
        return
    encoding = encoding.strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedEncoding(f"the response body is {encoding[:40]!r}-encoded, not identity")


def authority_of(host: str, port: int | None) -> str:
    """``host[:port]`` as the Host header and CONNECT want it: no credentials, IPv6 in brackets."""
    name = f"[{host}]" if ":" in host else host
    return name if port is None else f"{name}:{port}"


def proxy_auth(proxy: str) -> dict[str, str]:
    """Basic credentials from the proxy URL's user part, if it has one."""
    parts = urlsplit(proxy)
    if not parts.username:
        return {}
    user, password = unquote(parts.username), unquote(parts.password or "")
    return {"proxy-authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
