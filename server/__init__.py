"""The only async web code of tokenwire: Starlette app, WebSocket endpoint, SSE routes, stream runner."""

__version__ = "0.1.0"
