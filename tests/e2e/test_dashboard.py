"""The dashboard page (server/static) in a real Chromium: streams side by side over the bundled
JS client, a cancel, provider errors and refusals shown plainly, no console errors.

Needs the system's Chromium (`apt-get install chromium`); Playwright never downloads a browser.
Without it the tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, ViewportSize, expect, sync_playwright

from tests.conftest import Gateway, StartGateway
from tests.support.upstream import FakeUpstream, Reply

ROOT = Path(__file__).resolve().parents[2]
# The README's screenshot is refreshed only on request, so a test run leaves the tree clean:
# UPDATE_SCREENSHOT=1 make test
SCREENSHOT = ROOT / "docs" / "dashboard.png"
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SLOW = {"providers": {"rulebased": {"chunk_delay_ms": 30}}}  # slow enough to cancel
PROMPT = "Why is the sky blue?"
BRIEF = {"topic": "How tides work", "audience": "curious teenagers", "tone": "energetic"}
LONG_BRIEF_SECONDS = 300  # 750 narration words: several seconds at 30 ms a chunk
NOT_CONFIGURED = ["azure_openai", "anthropic", "gemini"]

expect.set_options(timeout=10_000)


def _chromium() -> str:
    path = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
    if path:
        return path
    message = "chromium not installed: apt-get install chromium (the dashboard tests need a real browser)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(f"!!! {message} !!!")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Console:
    """The page's console errors and uncaught exceptions."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console.error: {message.text} ({message.location.get('url')})")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def threaded_upstream() -> Iterator[FakeUpstream]:
    """A FakeUpstream on an event loop of its own: these tests are synchronous (Playwright)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def make() -> FakeUpstream:
        fake = FakeUpstream()
        await fake.start()
        return fake

    fake = asyncio.run_coroutine_threadsafe(make(), loop).result(10)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _completion(gateway: Gateway, request: dict[str, Any]) -> dict[str, Any]:
    post = urllib.request.Request(
        f"{gateway.http}/v1/completions",
        data=json.dumps(request).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(post, timeout=10) as response:
        body: dict[str, Any] = json.load(response)
    return body


def _open_dashboard(page: Page, gateway: Gateway) -> Console:
    console = Console(page)
    page.goto(f"{gateway.http}/")
    connection = page.get_by_test_id("connection")
    expect(connection).to_have_attribute("data-state", "open")
    expect(connection).to_contain_text("connected")
    expect(connection).to_contain_text("0 reconnects")
    expect(page.get_by_test_id("start")).to_be_enabled()
    return console


def _panel(page: Page, stream_id: str) -> Locator:
    return page.locator(f'[data-testid="panel"][data-stream-id="{stream_id}"]')


def _newest_panel_id(page: Page, count: int) -> str:
    panels = page.get_by_test_id("panel")
    expect(panels).to_have_count(count)
    stream_id = panels.first.get_attribute("data-stream-id")
    assert stream_id
    return stream_id


def test_two_streams_side_by_side_one_cancelled(start_gateway: StartGateway, page: Page) -> None:
    gateway = start_gateway(SLOW)
    console = _open_dashboard(page, gateway)
    expect(page.get_by_test_id("provider")).to_have_value("rulebased")
    expect(page.get_by_test_id("model")).to_have_value("script")

    # 1: a long video brief, cancelled while it streams
    page.get_by_test_id("mode-brief").check()
    expect(page.get_by_test_id("prompt")).to_be_hidden()
    page.get_by_test_id("topic").fill(BRIEF["topic"])
    page.get_by_test_id("audience").fill(BRIEF["audience"])
    page.get_by_test_id("tone").fill(BRIEF["tone"])
    page.get_by_test_id("duration").fill(str(LONG_BRIEF_SECONDS))
    page.get_by_test_id("start").click()
    first_id = _newest_panel_id(page, 1)
    first = _panel(page, first_id)
    expect(first.get_by_test_id("panel-status")).to_have_text("streaming")
    expect(first.get_by_test_id("panel-text")).to_contain_text("Title:")

    # 2: a prompt, submitted with Ctrl+Enter, runs to the end
    page.get_by_test_id("mode-prompt").check()
    page.get_by_test_id("prompt").fill(PROMPT)
    page.get_by_test_id("prompt").press("Control+Enter")
    second_id = _newest_panel_id(page, 2)  # newest first
    assert second_id != first_id
    second = _panel(page, second_id)
    expect(page.get_by_test_id("panel").nth(1)).to_have_attribute("data-stream-id", first_id)

    expect(first.get_by_test_id("panel-text")).to_contain_text("Scene 2")  # some way in
    expect(first.get_by_test_id("panel-status")).to_have_text("streaming")
    first.get_by_test_id("panel-cancel").click()
    expect(first.get_by_test_id("panel-status")).to_have_text("cancelled")
    expect(first.get_by_test_id("panel-cancel")).to_be_disabled()
    expect(second.get_by_test_id("panel-status")).to_have_text("done")
    expect(second.get_by_test_id("panel-cancel")).to_be_disabled()

    # the page shows exactly what the gateway produces for the same request (rulebased is deterministic)
    reference = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 0}}})
    answer = _completion(reference, {"provider": "rulebased", "model": "script", "prompt": PROMPT})
    text = second.get_by_test_id("panel-text").text_content()
    assert text
    assert text == answer["content"]
    tokens = int((second.get_by_test_id("panel-tokens").text_content() or "").replace(",", ""))
    assert tokens == answer["usage"]["completion_tokens"] > 0
    expect(second.get_by_test_id("panel-tps")).to_have_text(re.compile(r"^\d[\d,]*\.\d$"))
    expect(second.get_by_test_id("panel-ttft")).to_have_text(re.compile(r"^\d[\d,]* ms$"))
    expect(second.get_by_test_id("panel-cost")).to_have_text("$0")
    expect(second).to_contain_text("rulebased / script")
    expect(second.get_by_test_id("panel-error")).to_be_hidden()
    points = second.locator(".spark-line").get_attribute("points") or ""
    assert len(points.split()) >= 2, points

    # the cancelled panel keeps the text so far: a proper prefix of the whole script
    script = _completion(
        reference,
        {"brief": BRIEF, "plan": {"target_duration_seconds": LONG_BRIEF_SECONDS}},
    )["content"]
    partial = first.get_by_test_id("panel-text").text_content() or ""
    assert partial.startswith("Title: ")
    assert script.startswith(partial)
    assert len(partial) < len(script)
    expect(first.get_by_test_id("panel-cost")).to_have_text("$0")

    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.wait_for_timeout(300)  # let the last sparkline refresh land
    shot = page.screenshot(path=SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else None)
    assert shot.startswith(b"\x89PNG")

    # closing a panel removes it
    first.get_by_test_id("panel-close").click()
    expect(page.get_by_test_id("panel")).to_have_count(1)
    assert console.errors == []


def test_provider_errors_and_queued_streams_are_shown_plainly(
    start_gateway: StartGateway, page: Page, threaded_upstream: FakeUpstream
) -> None:
    body = b'{"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests","code":"rate_limit_exceeded"}}'
    threaded_upstream.reply(
        Reply(status=429, headers={"content-type": "application/json", "retry-after": "3"}, pieces=[body])
    )
    gateway = start_gateway(
        {"streaming": {"max_streams_per_connection": 1, "retry_attempts": 0}, **SLOW},
        environ={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{threaded_upstream.url}/v1"},
    )
    console = _open_dashboard(page, gateway)

    # every provider is listed; the ones without credentials say so and cannot be picked
    select = page.get_by_test_id("provider")
    for name in ["rulebased", "openai", "ollama"]:
        option = select.locator(f'option[value="{name}"]')
        expect(option).to_have_text(name)
        expect(option).to_be_enabled()
    for name in NOT_CONFIGURED:
        option = select.locator(f'option[value="{name}"]')
        expect(option).to_have_text(f"{name} (not configured)")
        expect(option).to_be_disabled()

    # a provider error ends the stream: code, message and retry delay in the panel
    select.select_option("openai")
    expect(page.get_by_test_id("model")).to_have_value("gpt-4o-mini")
    page.get_by_test_id("prompt").fill("hi")
    page.get_by_test_id("start").click()
    failed = _panel(page, _newest_panel_id(page, 1))
    expect(failed.get_by_test_id("panel-status")).to_have_text("error")
    expect(failed.get_by_test_id("panel-error")).to_have_text(
        "upstream_rate_limited: openai answered HTTP 429: Rate limit reached for gpt-4o-mini (retry in 3 s)"
    )
    expect(failed.get_by_test_id("panel-cancel")).to_be_disabled()
    expect(failed.get_by_test_id("panel-cost")).to_have_text("—")
    expect(failed).to_contain_text("openai / gpt-4o-mini")
    assert len(threaded_upstream.requests) == 1

    # a stream beyond the socket's limit (one here) waits in its own panel, and starts when the
    # running one ends: the client queues it rather than have the gateway refuse it
    select.select_option("rulebased")
    page.get_by_test_id("mode-brief").check()
    page.get_by_test_id("topic").fill("Queueing")
    page.get_by_test_id("duration").fill(str(LONG_BRIEF_SECONDS))
    page.get_by_test_id("start").click()
    running = _panel(page, _newest_panel_id(page, 2))
    expect(running.get_by_test_id("panel-status")).to_have_text("streaming")
    page.get_by_test_id("start").click()
    waiting = _panel(page, _newest_panel_id(page, 3))
    expect(waiting.get_by_test_id("panel-status")).to_have_text("queued")
    expect(running.get_by_test_id("panel-status")).to_have_text("streaming")
    running.get_by_test_id("panel-cancel").click()
    expect(running.get_by_test_id("panel-status")).to_have_text("cancelled")
    expect(waiting.get_by_test_id("panel-status")).to_have_text("streaming")
    waiting.get_by_test_id("panel-cancel").click()
    expect(waiting.get_by_test_id("panel-status")).to_have_text("cancelled")
    assert console.errors == []


def test_a_failover_is_shown_in_the_stream_panel(start_gateway: StartGateway, page: Page) -> None:
    # ollama at a closed port fails before the first token; the gateway fails over to rulebased.
    gateway = start_gateway(
        {"streaming": {"retry_attempts": 0}, "providers": {"ollama": {"fallbacks": ["rulebased"]}}},
        environ={"OLLAMA_HOST": "http://127.0.0.1:9"},
    )
    console = _open_dashboard(page, gateway)
    page.get_by_test_id("provider").select_option("ollama")
    page.get_by_test_id("mode-prompt").check()
    page.get_by_test_id("prompt").fill(PROMPT)
    page.get_by_test_id("start").click()
    panel = _panel(page, _newest_panel_id(page, 1))
    expect(panel.get_by_test_id("panel-status")).to_have_text("done")
    notice = panel.get_by_test_id("panel-notice")
    expect(notice).to_be_visible()
    expect(notice).to_have_attribute("data-notice", "failover")
    expect(notice).to_contain_text("rulebased")
    expect(panel.locator(".panel-model")).to_contain_text("rulebased")
    expect(panel.get_by_test_id("panel-text")).to_contain_text(PROMPT)
    assert console.errors == []
