"""server.fastpath.ws_protocol's frame encoder, read back by the websockets library's own parser."""

from __future__ import annotations

import pytest
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side

from server.fastpath.ws_protocol import text_frames


def read_frames(data: bytes) -> list[tuple[Opcode, bool, bytes]]:
    client = Protocol(Side.CLIENT, max_size=None)  # a client reads unmasked frames
    client.receive_data(data)
    assert client.parser_exc is None, client.parser_exc
    return [(f.opcode, f.fin, bytes(f.data)) for f in client.events_received()]  # type: ignore[union-attr]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 1_048_576])
def test_each_length_encoding_reads_back(size: int) -> None:
    payload = ("é" * size).encode()[:size] if size % 2 == 0 else b"x" * size
    assert read_frames(text_frames([payload])) == [(Opcode.TEXT, True, payload)]


def test_several_payloads_are_consecutive_frames() -> None:
    payloads = [b'{"type":"chunk"}', b"", b"y" * 70_000, "ünïcode".encode()]
    assert read_frames(text_frames(payloads)) == [(Opcode.TEXT, True, p) for p in payloads]


def test_no_payloads_write_nothing() -> None:
    assert text_frames([]) == b""
