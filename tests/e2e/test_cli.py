"""The `tokenwire serve` command as a user runs it: a real process, real clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.support.process import free_port, tokenwire, wait_healthy
from tests.support.wsclient import collect, recv, start


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "tokenwire.toml"
    config.write_text(
        "[streaming]\nmax_streams_per_connection = 3\n[providers.rulebased]\nchunk_delay_ms = 1\n"
    )
    port = free_port()
    process = tokenwire("serve", "--port", str(port), "--config", str(config))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


async def test_serve_runs_the_gateway_with_its_config(served: str) -> None:
    await wait_healthy(served)
    async with connect(f"ws://{served}/v1/ws") as ws:
        ready = await recv(ws)
        assert ready["limits"]["max_streams"] == 3
        await start(ws, "a", brief={"topic": "Bees"})
        per_id, _ = await collect(ws, {"a"})
    assert per_id["a"][-1]["content"].startswith("Title: Bees")


def test_bad_env_override_names_the_variable() -> None:
    process = tokenwire("serve", "--port", "1", env={"TOKENWIRE_STREAMING__MAX_CONCURRENT_STREAMS": "zero"})
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "streaming.max_concurrent_streams" in output
    assert "TOKENWIRE_STREAMING__MAX_CONCURRENT_STREAMS" in output


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[streaming]\nmax_streams = 3\n", "unknown key `streaming.max_streams`"),
        ("[providers.nope]\n", "unknown provider `providers.nope`"),
        ('[agents.helper]\nprovider = "nope"\n', "`agents.helper.provider` names unknown provider `nope`"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_config_errors_stop_start_up_naming_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "tokenwire.toml"
    config.write_text(text)
    process = tokenwire("serve", "--config", str(config))
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert fragment in output
    assert "Traceback" not in output


def test_missing_config_file(tmp_path: Path) -> None:
    process = tokenwire("serve", "--config", str(tmp_path / "absent.toml"))
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "absent.toml" in output
