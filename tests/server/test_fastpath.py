"""server.fastpath.probe: the fast path is used only where this uvicorn has every internal it reads.

This suite also runs at the floor of the declared range (`make test-floor`). A uvicorn without
one of them (a future release, say) is served through plain ASGI instead.
"""

from __future__ import annotations

import logging

import pytest
import websockets.version

from server.config import ServerConfig
from server.edge.guard import EdgeGuard
from server.fastpath import probe
from server.fastpath.http_protocol import BodyWritingHttpProtocol
from server.fastpath.ws_protocol import FrameWritingProtocol


def test_every_uvicorn_of_the_declared_range_carries_the_fast_path() -> None:
    assert probe.missing_internals() == []
    assert probe.fast_path.__wrapped__() is True
    edge = EdgeGuard(ServerConfig())
    protocols = probe.server_protocols(edge)
    assert issubclass(protocols["http"], BodyWritingHttpProtocol)
    assert issubclass(protocols["ws"], FrameWritingProtocol)
    assert protocols["http"].edge is protocols["ws"].edge is edge


def test_instance_attributes_are_found_in_the_methods_that_set_them() -> None:
    class Base:
        def __init__(self) -> None:
            self.set_in_init = 1

    class Sub(Base):
        def method(self) -> list[object]:
            return [self.read_in_comprehension for _ in range(1)]  # type: ignore[attr-defined]

    names = probe._names(Sub)
    assert {"set_in_init", "read_in_comprehension", "method"} <= names
    assert "never_mentioned" not in names


def test_a_missing_name_class_or_module_is_named() -> None:
    internals = {
        "uvicorn.protocols.http.flow_control:FlowControl": ("write_paused", "renamed_away"),
        "uvicorn.protocols.http.flow_control:GoneClass": ("anything",),
        "uvicorn.no_such_module:Protocol": ("x",),
    }
    assert probe.missing_internals(internals) == [
        "uvicorn.protocols.http.flow_control:FlowControl.renamed_away",
        "uvicorn.protocols.http.flow_control:GoneClass",
        "uvicorn.no_such_module:Protocol",
    ]


def test_a_missing_internal_means_plain_asgi_and_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(probe.INTERNALS, "uvicorn.protocols.http.flow_control:FlowControl", ("gone",))
    with caplog.at_level(logging.WARNING, logger="tokenwire.fastpath"):
        assert probe.fast_path.__wrapped__() is False
    [record] = caplog.records
    assert "FlowControl.gone" in record.getMessage()
    assert "plain ASGI" in record.getMessage()
    for defence in ("max_head_bytes", "head_timeout_seconds", "max_open_connections", "control-frame budget"):
        assert defence in record.getMessage()
    monkeypatch.setattr(probe, "fast_path", lambda: False)
    assert probe.server_protocols(EdgeGuard(ServerConfig())) == probe.STOCK


def test_lone_text_frames_are_read_directly_from_websockets_16_on() -> None:
    """websockets 16 renamed the size state the direct read checks; before it, every frame goes
    through websockets' parser, and the rest of the fast path stays on."""
    major = int(websockets.version.version.split(".")[0])
    assert (probe.missing_internals(probe.DIRECT_READ_INTERNALS) == []) is (major >= 16)
    protocols = probe.server_protocols(EdgeGuard(ServerConfig()))
    assert issubclass(protocols["ws"], FrameWritingProtocol)
    assert protocols["ws"].reads_directly is (major >= 16)
