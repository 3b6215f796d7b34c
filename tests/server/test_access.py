"""CORS for the HTTP routes, from the same allowlist that refuses foreign origins."""

from __future__ import annotations

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import StartGateway

APP = "https://app.example"


async def test_preflight_is_answered_without_a_token(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"allowed_origins": [APP], "auth_tokens": ["sekrit"]}})
    headers = {
        "Origin": APP,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.options(gw.http + "/v1/streams", headers=headers) as resp,
    ):
        assert resp.status == 204
        assert resp.headers["access-control-allow-origin"] == APP
        assert "POST" in resp.headers["access-control-allow-methods"]
        assert "authorization" in resp.headers["access-control-allow-headers"]


async def test_responses_carry_cors_headers_for_allowed_origins(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"allowed_origins": [APP], "auth_tokens": ["sekrit"]}})
    async with aiohttp.ClientSession() as http:
        ok = {"Origin": APP, "Authorization": "Bearer sekrit"}
        async with http.post(gw.http + "/v1/streams", json={"prompt": "hi"}, headers=ok) as resp:
            assert resp.status == 200
            assert resp.headers["access-control-allow-origin"] == APP
            assert "retry-after" in resp.headers["access-control-expose-headers"]
            assert "event: done" in await resp.text()
        # A refusal is readable by the page too, so it can show why.
        async with http.post(gw.http + "/v1/streams", json={"prompt": "hi"}, headers={"Origin": APP}) as resp:
            assert resp.status == 401
            assert resp.headers["access-control-allow-origin"] == APP
        evil = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        async with http.options(gw.http + "/v1/streams", headers=evil) as resp:
            assert resp.status == 403
            assert "access-control-allow-origin" not in resp.headers


async def test_wildcard_allows_any_origin(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"allowed_origins": ["*"]}})
    headers = {"Origin": "https://anywhere.example"}
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/completions", json={"prompt": "hi"}, headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["access-control-allow-origin"] == "https://anywhere.example"
        async with http.ws_connect(gw.ws, headers=headers) as ws:
            assert (await ws.receive_json())["type"] == "ready"


async def test_without_an_allowlist_no_cors_headers_are_sent(start_gateway: StartGateway) -> None:
    gw = start_gateway({})
    headers = {"Origin": "https://anywhere.example"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.http + "/v1/completions", json={"prompt": "hi"}, headers=headers) as resp,
    ):
        assert resp.status == 200
        assert "access-control-allow-origin" not in resp.headers


async def test_token_cookie_is_a_third_way_and_origin_checks_still_apply(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"allowed_origins": [APP], "auth_tokens": ["sekrit"]}})
    refused = (("tokenwire_token=nope", 401), ("other=sekrit", 401))
    async with aiohttp.ClientSession() as http:
        for value, status in (("tokenwire_token=sekrit", 200), *refused):
            async with http.get(gw.http + "/v1/models", headers={"Cookie": value}) as resp:
                assert resp.status == status, value
    cookie = {"Cookie": "tokenwire_token=sekrit"}
    async with connect(gw.ws, additional_headers={**cookie, "Origin": APP}) as ws:
        assert '"ready"' in str(await ws.recv())
    # The cookie rides along on a cross-site handshake too: the origin allowlist refuses that one.
    async with connect(gw.ws, additional_headers={**cookie, "Origin": "https://evil.example"}) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


async def test_the_token_as_x_api_key(start_gateway: StartGateway) -> None:
    """How the Anthropic SDKs send their key: a gateway token there is accepted on every route,
    and a browser may send the header (it is in the preflight's allowed headers)."""
    gw = start_gateway({"server": {"allowed_origins": [APP], "auth_tokens": ["sekrit"]}})
    async with aiohttp.ClientSession() as http:
        for key, status in (("sekrit", 200), ("sk-ant-provider-key", 401)):
            headers = {"x-api-key": key}
            async with http.post(gw.http + "/v1/completions", json={"prompt": "hi"}, headers=headers) as resp:
                assert resp.status == status
        preflight = {"Origin": APP, "Access-Control-Request-Method": "POST"}
        async with http.options(gw.http + "/v1/messages", headers=preflight) as resp:
            allowed = resp.headers["access-control-allow-headers"]
    assert "x-api-key" in allowed
    assert "anthropic-version" in allowed
