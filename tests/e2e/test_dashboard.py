"""The dashboard page (server/static) in a real Chromium: streams side by side over the bundled
JS client, a cancel, provider errors and refusals shown plainly, no console errors; and the v1.1
parts: reasoning, a demo tool loop run in the page, JSON with its badge, an attached image.

Needs the system's Chromium (`apt-get install chromium`); Playwright never downloads a browser.
Without it the tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import base64
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
from tests.support.openai_bytes import openai_chunk
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


# ---- protocol v1.1: reasoning, tool calls, JSON output, images ----------------------------------

CALC_PROMPT = "Use the calculator to compute (17+4)*2"
PERSON = "Ada, 36, an engineer who speaks Python and French"
# A 1x1 PNG, and one byte more than the 5 MiB the gateway takes.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2213ebc0000000049454e44ae426082"
)
TOO_BIG = 5 * 1024 * 1024 + 1


def _extras(page: Page) -> None:
    page.get_by_test_id("extras").locator("summary").click()


def _run_prompt(page: Page, prompt: str, panels: int = 1) -> Locator:
    """Starts a stream of `prompt` with what the form says; its panel."""
    page.get_by_test_id("prompt").fill(prompt)
    page.get_by_test_id("start").click()
    return _panel(page, _newest_panel_id(page, panels))


def test_the_demo_tool_loop_runs_in_the_page(start_gateway: StartGateway, page: Page) -> None:
    gateway = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 5}}})
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    console = _open_dashboard(page, gateway)
    _extras(page)
    page.get_by_test_id("reasoning").select_option("low")
    page.get_by_test_id("tool-calculator").check()
    panel = _run_prompt(page, CALC_PROMPT)
    expect(panel.get_by_test_id("panel-status")).to_have_text("done")

    # the model called the tool; the page ran it; the card shows the arguments and the result
    card = panel.get_by_test_id("tool-card")
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("tool-name")).to_have_text("calculator")
    expect(card).to_have_attribute("data-state", "done")
    args = json.loads(card.get_by_test_id("tool-args").text_content() or "")
    assert args == {"expression": "(17+4)*2"}
    expect(card.get_by_test_id("tool-result")).to_have_text("42")
    # the second step answered with the result, on the same socket
    expect(panel.get_by_test_id("panel-text")).to_have_text("The calculator tool returned: 42")
    expect(panel.locator(".step")).to_have_text("step 2")
    assert len(sockets) == 1

    # a reasoning passage for each step, dimmed and folded once the step moved on; it unfolds
    reasoning = panel.get_by_test_id("panel-reasoning")
    expect(reasoning).to_have_count(2)
    expect(reasoning.first).to_contain_text("calculator")
    expect(reasoning.first.get_by_test_id("reasoning-text")).to_be_hidden()
    reasoning.first.locator("summary").click()
    expect(reasoning.first.get_by_test_id("reasoning-text")).to_be_visible()
    expect(reasoning.nth(1)).to_contain_text("The calculator tool returned")
    assert console.errors == []


def test_tool_arguments_fill_in_live(start_gateway: StartGateway, page: Page) -> None:
    gateway = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 400}}})
    console = _open_dashboard(page, gateway)
    _extras(page)
    page.get_by_test_id("tool-clock").check()
    panel = _run_prompt(page, "Ask the clock what time it is in Asia/Tokyo")
    card = panel.get_by_test_id("tool-card")
    expect(card).to_have_attribute("data-state", "calling")
    expect(card.get_by_test_id("tool-args")).to_have_text("{}")  # the key has come, not its value
    expect(card.get_by_test_id("tool-args")).to_have_text('{\n  "timezone": "Asia/Tokyo"\n}')
    expect(card).to_have_attribute("data-state", "done", timeout=15_000)
    result = json.loads(card.get_by_test_id("tool-result").text_content() or "")
    assert result["timezone"] == "Asia/Tokyo"
    assert re.match(r"^\d{4}-\d\d-\d\dT", result["iso"])
    panel.get_by_test_id("panel-cancel").click()
    expect(panel.get_by_test_id("panel-status")).to_have_text("cancelled")
    assert console.errors == []


def test_json_output_is_pretty_printed_with_a_badge(start_gateway: StartGateway, page: Page) -> None:
    gateway = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 5}}})
    console = _open_dashboard(page, gateway)
    _extras(page)
    page.get_by_test_id("format").select_option("json_schema")
    expect(page.get_by_test_id("schema")).to_be_visible()
    schema = json.loads(page.get_by_test_id("schema").input_value())
    panel = _run_prompt(page, PERSON)
    expect(panel.get_by_test_id("panel-status")).to_have_text("done")
    badge = panel.get_by_test_id("json-badge")
    expect(badge).to_have_attribute("data-valid", "true")
    expect(badge).to_have_text("valid · matches the schema")
    pretty = panel.get_by_test_id("panel-json").text_content() or ""
    request = {
        "prompt": PERSON,
        "response_format": {"type": "json_schema", "name": "response", "schema": schema},
    }
    answer = _completion(gateway, request)
    assert json.loads(pretty) == answer["object"]
    assert pretty == json.dumps(answer["object"], indent=2, ensure_ascii=False)
    assert set(schema["required"]) <= set(answer["object"])
    expect(panel.get_by_test_id("panel-text")).to_be_hidden()

    # a schema that is not JSON stays in the form
    page.get_by_test_id("schema").fill("{not json")
    page.get_by_test_id("start").click()
    expect(page.locator("#form-error")).to_contain_text("The JSON Schema is not JSON")
    expect(page.get_by_test_id("panel")).to_have_count(1)
    assert console.errors == []


def test_json_that_is_not_valid_gets_an_invalid_badge(
    start_gateway: StartGateway, page: Page, threaded_upstream: FakeUpstream
) -> None:
    # valid JSON, but not for the schema (age must be an integer)
    pieces = [
        openai_chunk('{"name": "Ada", '),
        openai_chunk('"age": "old"}'),
        openai_chunk(None, "stop"),
        b"data: [DONE]\n\n",
    ]
    threaded_upstream.reply(Reply(pieces=pieces))
    gateway = start_gateway(
        {"streaming": {"retry_attempts": 0}},
        environ={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{threaded_upstream.url}/v1"},
    )
    console = _open_dashboard(page, gateway)
    page.get_by_test_id("provider").select_option("openai")
    _extras(page)
    page.get_by_test_id("format").select_option("json_schema")
    panel = _run_prompt(page, PERSON)
    expect(panel.get_by_test_id("panel-status")).to_have_text("done")
    badge = panel.get_by_test_id("json-badge")
    expect(badge).to_have_attribute("data-valid", "false")
    expect(badge).to_have_text("invalid")
    expect(panel.get_by_test_id("json-error")).to_contain_text("does not match the schema")
    # the partial view showed what came; the raw text is back
    assert json.loads(panel.get_by_test_id("panel-json").text_content() or "") == {
        "name": "Ada",
        "age": "old",
    }
    expect(panel.get_by_test_id("panel-text")).to_have_text('{"name": "Ada", "age": "old"}')
    sent = threaded_upstream.requests[0].json()
    assert sent["response_format"]["type"] == "json_schema"
    assert console.errors == []


def test_an_attached_image_is_checked_shown_and_sent(start_gateway: StartGateway, page: Page) -> None:
    gateway = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 5}}})
    console = _open_dashboard(page, gateway)
    image_input = page.get_by_test_id("image-input")

    # too big, or not an image the gateway takes: said in the form, nothing attached
    image_input.set_input_files({"name": "huge.png", "mimeType": "image/png", "buffer": bytes(TOO_BIG)})
    expect(page.locator("#form-error")).to_contain_text(f"the image is {TOO_BIG} bytes")
    expect(page.get_by_test_id("image-preview")).to_be_hidden()
    image_input.set_input_files({"name": "logo.svg", "mimeType": "image/svg+xml", "buffer": b"<svg/>"})
    expect(page.locator("#form-error")).to_contain_text("PNG, JPEG, GIF or WebP")

    image_input.set_input_files({"name": "pixel.png", "mimeType": "image/png", "buffer": PIXEL_PNG})
    expect(page.locator("#form-error")).to_be_hidden()
    thumb = page.get_by_test_id("image-thumb")
    expect(thumb).to_be_visible()
    url = f"data:image/png;base64,{base64.b64encode(PIXEL_PNG).decode()}"
    expect(thumb).to_have_attribute("src", url)
    assert page.evaluate("document.querySelector('[data-testid=image-thumb]').naturalWidth") == 1
    panel = _run_prompt(page, "What is in this picture?")
    expect(panel.get_by_test_id("panel-status")).to_have_text("done")
    expect(panel.get_by_test_id("panel-image")).to_have_attribute("src", url)
    expect(panel.get_by_test_id("panel-text")).to_contain_text("What is in this picture?")

    page.get_by_test_id("image-remove").click()
    expect(page.get_by_test_id("image-preview")).to_be_hidden()
    assert console.errors == []


def test_the_calculator_evaluates_arithmetic_only(gateway: Gateway, page: Page) -> None:
    page.goto(f"{gateway.http}/")
    results = page.evaluate(
        """async () => {
            const { calculate } = await import('/demo-tools.js');
            const run = (e) => { try { return calculate(e); } catch (error) { return `${error.name}: ${error.message}`; } };
            return ['(17+4)*2', '2^3^2', '-3 + 10 % 4', '7/2', '1/0', '2 *', 'alert(1)', '((1)'].map(run);
        }"""
    )
    assert results == [
        42,
        512,
        -1,
        3.5,
        "RangeError: 1/0 has no finite value",
        "SyntaxError: 2 * ends too early",
        'SyntaxError: unexpected "a" in alert(1)',
        'SyntaxError: expected ")" in ((1)',
    ]


# ---- the API from a page of another origin ------------------------------------------------------


def test_a_page_of_an_allowed_origin_calls_the_api_with_the_sdks_headers(
    start_gateway: StartGateway, page: Page
) -> None:
    """What the official SDKs send from a browser (their x-stainless-* headers, Anthropic's
    opt-in header) passes the preflight of an allowed origin, with a gateway token."""
    pages = start_gateway()  # serves the page: the origin of the calls
    api = start_gateway({"server": {"allowed_origins": [pages.http], "auth_tokens": ["sekrit"]}})
    page.goto(f"{pages.http}/")
    result = page.evaluate(
        """async (api) => {
            const sdk = {
                'x-stainless-lang': 'js', 'x-stainless-os': 'Linux', 'x-stainless-arch': 'x64',
                'x-stainless-runtime': 'browser:chrome', 'x-stainless-retry-count': '0',
                'x-stainless-package-version': '0.65.0', 'x-stainless-timeout': '600',
            };
            const anthropic = await fetch(`${api}/v1/messages`, {
                method: 'POST',
                headers: {
                    ...sdk, 'content-type': 'application/json', 'x-api-key': 'sekrit',
                    'anthropic-version': '2023-06-01', 'anthropic-dangerous-direct-browser-access': 'true',
                },
                body: JSON.stringify({ model: 'rulebased/script', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] }),
            });
            const openai = await fetch(`${api}/v1/chat/completions`, {
                method: 'POST',
                headers: { ...sdk, 'content-type': 'application/json', authorization: 'Bearer sekrit' },
                body: JSON.stringify({ model: 'rulebased/script', messages: [{ role: 'user', content: 'Hi' }] }),
            });
            const refused = await fetch(`${api}/v1/chat/completions`, {
                method: 'POST',
                headers: { ...sdk, 'content-type': 'application/json', authorization: 'Bearer wrong' },
                body: '{}',
            });
            return [anthropic.status, (await anthropic.json()).type, openai.status,
                    (await openai.json()).object, refused.status];
        }""",
        api.http,
    )
    assert result == [200, "message", 200, "chat.completion", 401]
