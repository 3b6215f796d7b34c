"""Hostile clients at the edge, over raw sockets, against a real gateway: what a client can make
the server hold before the app (and its access control) sees a request.

The gateway runs in this process (tests/conftest.py), so its memory is this process's: a bound
is checked as growth of the resident set while the attack's connection is still open.
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Iterable, Iterator

import pytest

from tests.conftest import Gateway, StartGateway

WS_HANDSHAKE = (
    b"GET /v1/ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
ATTACK_SECONDS = 5.0  # how long a client keeps sending before the test calls it unanswered


def port(gw: Gateway) -> int:
    return int(gw.http.rsplit(":", 1)[1])


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        kib = next(line for line in status if line.startswith("VmRSS:")).split()[1]
    return int(kib) * 1024


def status(response: bytes) -> int | None:
    found = re.match(rb"HTTP/1\.1 (\d{3}) ", response)
    return int(found[1]) if found else None


def send_until_answered(
    sock: socket.socket, chunks: Iterable[bytes], seconds: float = ATTACK_SECONDS
) -> bytes:
    """Send ``chunks`` until the server answers, closes or ``seconds`` pass; what it answered."""
    deadline = time.monotonic() + seconds
    pending = iter(chunks)
    out = memoryview(b"")
    while time.monotonic() < deadline:
        if not out:
            out = memoryview(next(pending, b""))
        readable, writable, _ = select.select([sock], [sock] if out else [], [], 0.05)
        if readable:
            return read_answer(sock, deadline)
        try:
            if writable:
                out = out[sock.send(out) :]
        except (BrokenPipeError, ConnectionResetError):
            return read_answer(sock, deadline)
    return b""


def read_answer(sock: socket.socket, deadline: float) -> bytes:
    """What the server sends until it closes (or the deadline)."""
    answer = b""
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        while data := sock.recv(65536):
            answer += data
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    """``total`` bytes of ``piece`` again and again, in reads of about 64 KiB, built once."""
    block = piece * max(1, 65536 // len(piece))
    for _ in range(total // len(block)):
        yield block


@pytest.mark.parametrize(
    ("name", "filler"),
    [("one 100 MB header", b"a" * 64), ("100 MB of short header lines", b"X-Pad: a\r\n")],
)
def test_an_unbounded_head_is_431_and_holds_no_memory(gateway: Gateway, name: str, filler: bytes) -> None:
    before = rss_bytes()
    start = b"GET /healthz HTTP/1.1\r\nHost: gw\r\n" + (b"X-Big: " if filler[:1] == b"a" else b"")
    with socket.create_connection(("127.0.0.1", port(gateway))) as sock:
        answer = send_until_answered(sock, [start, *repeated(filler, 100 * 1024 * 1024)])
        grown = rss_bytes() - before
    assert status(answer) == 431, answer[:200]
    assert grown < 8 * 1024 * 1024, f"{name}: the process grew {grown / 2**20:.1f} MiB"


def head_of(size: int, lines: int, start: bytes = HEALTHZ) -> bytes:
    """A request head of about ``size`` bytes in ``lines`` more header lines."""
    value = b"v" * max(1, size // lines - len(b"X-Pad-000: \r\n"))
    return start + b"".join(b"X-Pad-%03d: %b\r\n" % (i, value) for i in range(lines)) + b"\r\n"


def answer_to(gw: Gateway, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port(gw))) as sock:
        sock.sendall(request)
        return read_answer(sock, time.monotonic() + ATTACK_SECONDS)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (head_of(60 * 1024, 90), 200),  # within both bounds
        (head_of(80 * 1024, 40), 431),  # too many bytes
        (head_of(4 * 1024, 101), 431),  # too many lines
        (HEALTHZ.replace(b"/healthz", b"/healthz?" + b"q" * 70 * 1024) + b"\r\n", 431),  # the URL counts
    ],
    ids=["60KiB-90-lines", "80KiB", "101-lines", "70KiB-url"],
)
def test_a_head_over_its_bounds_is_431(gateway: Gateway, head: bytes, expected: int) -> None:
    answer = answer_to(gateway, head)
    assert status(answer) == expected, answer[:300]


def test_a_body_in_the_same_read_as_the_head_is_not_counted(gateway: Gateway) -> None:
    body = b'{"prompt":"' + b"p" * 400_000 + b'"}'
    head = head_of(60 * 1024, 60, HEALTHZ.replace(b"GET /healthz", b"POST /v1/completions"))
    head = head[:-2] + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert status(answer_to(gateway, head + body)) == 200


@pytest.mark.parametrize(
    ("lines", "size"), [(101, 4 * 1024), (20, 80 * 1024)], ids=["101-lines", "80KiB-in-4KiB-lines"]
)
def test_a_websocket_handshake_over_the_head_bounds_is_431(gateway: Gateway, lines: int, size: int) -> None:
    answer = answer_to(gateway, head_of(size, lines, WS_HANDSHAKE))
    assert status(answer) == 431, answer[:300]


def refused(gw: Gateway, reason: str) -> float:
    """``tokenwire_connections_refused_total{reason}`` as /metrics has it now."""
    metrics = answer_to(gw, HEALTHZ.replace(b"/healthz", b"/metrics") + b"\r\n").decode()
    found = re.search(rf'^tokenwire_connections_refused_total{{reason="{reason}"}} (\S+)$', metrics, re.M)
    assert found, metrics
    return float(found[1])


@pytest.mark.parametrize(
    ("handshake", "expected"),
    [
        (WS_HANDSHAKE + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (WS_HANDSHAKE.replace(b"/v1/ws", b"/v1/ws?" + b"q" * 9000) + b"\r\n", 414),
    ],
    ids=["9000-byte-header-line", "9000-byte-url"],
)
def test_a_handshake_line_websockets_would_refuse_is_refused_at_the_edge(
    gateway: Gateway, handshake: bytes, expected: int
) -> None:
    """websockets refuses lines over 8 KiB itself, but with a traceback at DEBUG, and uncounted."""
    assert status(answer_to(gateway, handshake)) == expected
    assert refused(gateway, "head_too_large") == 1


def test_head_bounds_are_configured_and_each_431_is_counted(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"max_head_bytes": 4096, "max_head_lines": 10}})
    assert status(answer_to(gw, head_of(2048, 8))) == 200
    assert status(answer_to(gw, head_of(8192, 8))) == 431
    assert status(answer_to(gw, head_of(1024, 11))) == 431
    assert refused(gw, "head_too_large") == 2


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_a_connection_without_a_complete_head_is_closed_in_time(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"head_timeout_seconds": 0.5}})
    address = ("127.0.0.1", port(gw))
    with socket.create_connection(address) as idle, socket.create_connection(address) as half:
        half.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
        started = time.monotonic()
        assert closed_by_server(idle, 3)
        assert closed_by_server(half, 3)
        assert time.monotonic() - started < 2
    assert refused(gw, "head_timeout") == 2


def test_the_head_timeout_spares_answered_and_kept_alive_requests(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"head_timeout_seconds": 0.5}})
    with socket.create_connection(("127.0.0.1", port(gw))) as sock:
        for _ in range(3):  # each well within the timeout; together longer
            time.sleep(0.3)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
            answer = b""
            while not answer.endswith(b"}"):  # /healthz answers a JSON object
                answer += sock.recv(65536)
            assert status(answer) == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # a later request's head is timed too
        assert closed_by_server(sock, 3)


def test_a_connection_over_the_cap_is_answered_503_at_once(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"max_open_connections": 4}})
    address = ("127.0.0.1", port(gw))
    held = [socket.create_connection(address) for _ in range(4)]
    try:
        time.sleep(0.2)  # the server has taken them all
        with socket.create_connection(address) as extra:
            assert status(read_answer(extra, time.monotonic() + 2)) == 503
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert status(answer_to(gw, HEALTHZ + b"\r\n")) == 200
    assert refused(gw, "too_many_connections") == 1


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (mask 0: the payload goes as it is) of under 126 bytes."""
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


def close_code(data: bytes) -> int | None:
    """The code of the close frame among the server's frames, if any."""
    while len(data) >= 2:
        opcode, size, at = data[0] & 0x0F, data[1] & 0x7F, 2
        if size == 126:
            size, at = int.from_bytes(data[2:4]), 4
        elif size == 127:
            size, at = int.from_bytes(data[2:10]), 10
        if opcode == 0x8:
            return int.from_bytes(data[at : at + 2])
        data = data[at + size :]
    return None


def open_ws(gw: Gateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port(gw)))
    sock.sendall(WS_HANDSHAKE + b"\r\n")
    sock.settimeout(5)
    received = b""
    while not received.endswith(b"}"):  # the gateway's `ready` message, a JSON object
        received += sock.recv(65536)
    assert status(received) == 101
    return sock


def test_a_ping_flood_is_closed_with_1008(gateway: Gateway) -> None:
    with open_ws(gateway) as sock:
        sock.sendall(ws_frame(0x9, b"flood") * 10_000)
        assert close_code(read_answer(sock, time.monotonic() + 3)) == 1008
    assert refused(gateway, "control_frames") == 1


def test_control_frames_within_their_budget_are_answered(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"control_frames_per_second": 1, "control_frames_burst": 5}})
    with open_ws(gw) as sock:
        sock.sendall(ws_frame(0x9, b"p") * 3 + ws_frame(0xA, b"unsolicited") * 2)
        time.sleep(0.3)
        sock.sendall(ws_frame(0x8, (1000).to_bytes(2)))  # a clean close: answered 1000
        assert close_code(read_answer(sock, time.monotonic() + 3)) == 1000
    with open_ws(gw) as sock:
        sock.sendall(ws_frame(0x9, b"p") * 6)  # one past the burst
        assert close_code(read_answer(sock, time.monotonic() + 3)) == 1008
