"""providers.http.client over TLS (a throwaway CA from trustme) and through a tiny forward proxy
(CONNECT for HTTPS, absolute-form for HTTP), against raw servers (tests/support/raw_http.py)."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trustme

from providers.http.client import HttpClient
from providers.http.errors import ConnectFailed
from tests.support.raw_http import (
    Peer,
    Serve,
    answer,
    get,
    ok,
    read_all,
)

# ---- TLS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext  # trusts the CA that signed the server's certificate


@pytest.fixture(scope="module")
def tls() -> Tls:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(server, client)


@pytest.fixture
async def tls_client(tls: Tls) -> AsyncIterator[HttpClient]:
    client = HttpClient(connect_timeout=2, ssl_context=tls.client)
    await client.start()
    yield client
    await client.close()


async def test_https_with_a_trusted_certificate(serve: Serve, tls: Tls, tls_client: HttpClient) -> None:
    server = await serve(answer(ok(b"secure one"), ok(b"secure two")), tls=tls.server)
    for host in ("localhost", "127.0.0.1"):
        response = await get(tls_client, server.url("/v1/models", host=host))
        assert await read_all(response) == [b"secure one"]
        assert server.peers[-1].requests[-1].headers["host"] == f"{host}:{server.port}"
    assert await read_all(await get(tls_client, server.url("/again", host="localhost"))) == [b"secure two"]
    assert server.accepted == 2  # one per origin, reused


async def test_https_with_an_untrusted_certificate_raises_connect_failed(
    serve: Serve, tls: Tls, client: HttpClient
) -> None:
    server = await serve(answer(ok()), tls=tls.server)
    with pytest.raises(ConnectFailed) as caught:
        await get(client, server.url(host="localhost"))  # the default context: the system's CAs
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


# ---- proxies -----------------------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()  # either side ending ends the tunnel


async def forward_proxy(peer: Peer) -> None:
    """A forward proxy: tunnels ``CONNECT host:port`` to 127.0.0.1:port; answers absolute-form
    requests itself."""
    while (request := await peer.request()) is not None:
        if request.method != "CONNECT":
            await peer.send(ok(b"from the proxy"))
            continue
        reader, writer = await asyncio.open_connection("127.0.0.1", int(request.target.rpartition(":")[2]))
        await peer.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
        async with asyncio.TaskGroup() as tunnel:
            tunnel.create_task(_pipe(peer.reader, writer))
            tunnel.create_task(_pipe(reader, peer.writer))
        return


async def test_https_through_a_proxy_tunnels_with_connect_and_basic_auth(
    serve: Serve, tls: Tls, tls_client: HttpClient
) -> None:
    origin = await serve(answer(ok(b"tunnelled")), tls=tls.server)
    proxy = await serve(forward_proxy)
    proxy_url = f"http://user:p%40ss@127.0.0.1:{proxy.port}"
    response = await tls_client.request(
        "POST", origin.url("/v1/chat", host="localhost"), {"x-key": "k"}, b"{}", proxy=proxy_url
    )
    assert await read_all(response) == [b"tunnelled"]
    [connect] = proxy.peers[0].requests
    assert connect.line == f"CONNECT localhost:{origin.port} HTTP/1.1"
    assert connect.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()
    [request] = origin.peers[0].requests  # the origin saw the request itself, in origin-form
    assert request.line == "POST /v1/chat HTTP/1.1"
    assert request.headers["x-key"] == "k"
    assert "proxy-authorization" not in request.headers


async def test_http_through_a_proxy_uses_the_absolute_form(serve: Serve, client: HttpClient) -> None:
    proxy = await serve(forward_proxy)
    url = "http://api.example.test:8080/v1/chat?stream=1"  # never resolved: the proxy answers
    response = await client.request("POST", url, {}, b"{}", proxy=f"http://127.0.0.1:{proxy.port}")
    assert await read_all(response) == [b"from the proxy"]
    [request] = proxy.peers[0].requests
    assert request.line == f"POST {url} HTTP/1.1"
    assert request.headers["host"] == "api.example.test:8080"
    assert request.body == b"{}"


async def test_proxy_refusing_connect_raises_connect_failed(
    serve: Serve, tls: Tls, tls_client: HttpClient
) -> None:
    refusal = ok(b"", "proxy-authenticate: Basic", status="407 Proxy Authentication Required")
    proxy = await serve(answer(refusal))
    with pytest.raises(ConnectFailed, match="407"):
        await get(tls_client, "https://localhost:443/", proxy=f"http://127.0.0.1:{proxy.port}")
    assert proxy.peers[0].requests[0].line == "CONNECT localhost:443 HTTP/1.1"
    assert await proxy.peers[0].saw_hang_up()


async def test_proxy_silent_after_connect_times_out_and_is_dropped(serve: Serve, tls: Tls) -> None:
    async def silent(peer: Peer) -> None:
        await peer.request()
        await peer.until_gone()

    proxy = await serve(silent)
    client = HttpClient(connect_timeout=0.2, ssl_context=tls.client)
    await client.start()
    try:
        with pytest.raises(ConnectFailed):
            await get(client, "https://localhost:443/", proxy=f"http://127.0.0.1:{proxy.port}")
        assert await proxy.peers[0].saw_hang_up(within=0.5)
    finally:
        await client.close()


async def test_http_through_a_proxy_with_credentials_sends_them(serve: Serve, client: HttpClient) -> None:
    proxy = await serve(forward_proxy)
    proxy_url = f"http://user:secret@127.0.0.1:{proxy.port}"
    response = await get(client, "http://api.example.test/v1/models", proxy=proxy_url)
    assert await read_all(response) == [b"from the proxy"]
    [request] = proxy.peers[0].requests
    assert request.headers.get("proxy-authorization") == "Basic " + base64.b64encode(b"user:secret").decode()
