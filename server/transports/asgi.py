"""What the HTTP routes share: the hub they serve, and the one listener for a client leaving."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Receive

from server.hub import StreamHub


def hub_of(request: Request) -> StreamHub:
    hub: StreamHub = request.app.state.hub
    return hub


async def listen_for_disconnect(receive: Receive) -> None:
    """Until the client has gone away (as starlette's ``listen_for_disconnect``): its caller
    reads nothing else of the request, whose body was read before."""
    while (await receive())["type"] != "http.disconnect":
        pass
