"""server.fastpath.ws_protocol's frame encoder, read back by the websockets library's own parser,
and its reader of lone text frames, given what websockets' own client writes."""

from __future__ import annotations

import pytest
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

from server.fastpath.ws_protocol import between_frames, lone_masked_text, text_frames


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


# ---- reading a lone text frame directly ---------------------------------------------------------


def client_frames(*messages: str | bytes, fin: bool = True) -> bytes:
    """What a real client (websockets' own, masking as RFC 6455 requires) writes for ``messages``:
    a text frame for each str, a binary frame for each bytes."""
    client = Protocol(Side.CLIENT, state=State.OPEN, max_size=None)
    for message in messages:
        if isinstance(message, str):
            client.send_text(message.encode(), fin=fin)
        else:
            client.send_binary(message, fin=fin)
    return b"".join(client.data_to_send())


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535])
def test_a_lone_text_frame_is_unmasked(size: int) -> None:
    text = ("é" * size)[: size // 2] + "x" * (size - 2 * (size // 2))
    assert lone_masked_text(client_frames(text), None) == text.encode()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (client_frames("x" * 65_536), "a 64-bit length"),
        (client_frames("a", "b"), "two frames"),
        (client_frames("abc")[:-1], "part of a frame"),
        (client_frames("abc") + b"\x81", "a frame and the start of the next"),
        (client_frames("abc", fin=False), "a fragment"),
        (client_frames(b"abc"), "a binary frame"),
        (text_frames([b"abc"]), "an unmasked frame"),
        (bytes([0xC1]) + client_frames("abc")[1:], "RSV1 set (a compressed frame)"),
        (client_frames("")[:2], "a header alone"),
    ],
)
def test_anything_else_is_left_to_websockets(data: bytes, why: str) -> None:
    assert lone_masked_text(data, None) is None, why


def test_a_frame_over_the_limit_is_left_to_websockets() -> None:
    """websockets answers it with 1009 (tests/server/test_ws.py)."""
    assert lone_masked_text(client_frames("x" * 100), 99) is None
    assert lone_masked_text(client_frames("x" * 100), 100) == b"x" * 100


def test_the_parser_is_between_frames_only_before_a_first_byte() -> None:
    """A read may end right after a header: nothing is buffered then, yet the parser is inside
    a frame, and the next read's bytes are its payload, not a frame of their own."""
    server = Protocol(Side.SERVER, state=State.OPEN)
    frame = client_frames("hello")
    assert between_frames(server.parser)
    for cut in range(1, len(frame)):
        server.receive_data(frame[:cut])
        assert not between_frames(server.parser), cut
        server.receive_data(frame[cut:])
        assert between_frames(server.parser), cut
    assert len(server.events_received()) == len(frame) - 1
