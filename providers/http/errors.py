"""The HTTP client's errors (providers.http.client): what failed, never a request header's value."""

from __future__ import annotations


class HttpError(OSError):
    """A failed exchange; the message never contains request headers (keys)."""


class ConnectFailed(HttpError):
    """No connection: refused, unresolvable, timed out, TLS failure, or the proxy refused."""


class NoResponse(HttpError):
    """The connection closed or broke, or sent something unreadable, before a whole response head."""


class Unanswered(NoResponse):
    """The server closed the connection before a byte of the response."""


class BadRequest(HttpError):
    """The request could not be written as given (a header with a line break)."""


class BodyCut(HttpError):
    """The response body ended early, broke, or was malformed."""


class UnsupportedProxy(HttpError):
    """A proxy URL that is not ``http://``. An https:// proxy would need TLS to the proxy, then
    TLS to the origin inside its tunnel: start_tls over a TLS transport, untried here on uvloop,
    for little gain, as HTTPS to the origin is end-to-end TLS through an http:// proxy anyway."""


class PoolTimeout(HttpError):
    """Every connection the cap allows stayed in use for the whole pool timeout."""


class UnsupportedEncoding(HttpError):
    """The response body is compressed (any content-encoding but identity), though only identity
    was accepted: it would reach the dialect's parser as garbage."""
