"""Proxies are resolved once per provider from the standard environment variables."""

from __future__ import annotations

import pytest

from providers.http.client import HttpClient
from providers.http.errors import UnsupportedProxy
from providers.http.provider import proxy_for
from providers.http.wire import check_proxy


def test_proxy_for_honours_https_proxy_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert proxy_for("https://api.openai.com/v1") == "http://proxy.internal:3128"
    assert proxy_for("http://127.0.0.1:11434") is None


def test_no_proxy_without_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_for("https://api.anthropic.com") is None


@pytest.mark.parametrize(
    "url", ["https://user:secret@proxy.internal:3128", "socks5://proxy.internal", "proxy.internal:3128"]
)
def test_only_http_proxies_are_accepted(url: str) -> None:
    with pytest.raises(UnsupportedProxy, match="must be http://") as refused:
        check_proxy(url)
    assert "secret" not in str(refused.value)  # the URL itself is never repeated
    check_proxy("http://user:secret@proxy.internal:3128")


async def test_a_request_through_an_https_proxy_is_refused_before_connecting() -> None:
    client = HttpClient(connect_timeout=2)
    await client.start()
    try:
        with pytest.raises(UnsupportedProxy):
            await client.request("GET", "https://api.example.test/", {}, b"", proxy="https://127.0.0.1:9")
        assert not client._open  # its place under the cap was given back
    finally:
        await client.close()
