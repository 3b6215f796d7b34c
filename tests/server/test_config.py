from __future__ import annotations

from pathlib import Path

import pytest

from protocol.messages import Options
from providers.http.provider import HttpProvider
from server.app import create_app
from server.config import (
    AgentConfig,
    Config,
    ConfigError,
    Price,
    ProviderConfig,
    ServerConfig,
    StreamingConfig,
    UpstreamConfig,
    load_config,
)

FULL = """
[server]
host = "0.0.0.0"
port = 9001
auth_tokens = ["t1", "t2"]
allowed_origins = ["https://example.com"]
max_message_bytes = 2048

[streaming]
enabled = false
default_provider = "openai"
max_concurrent_streams = 5
max_streams_per_connection = 2
stream_timeout_seconds = 30
first_token_timeout_seconds = 2.5
idle_timeout_seconds = 10
buffer_size = 4096
keepalive_seconds = 1

[upstream]
max_connections = 50
pool_timeout_seconds = 2
keepalive_seconds = 5
connect_timeout_seconds = 3

[providers.openai]
base_url = "https://api.example.com/v1"
default_model = "gpt-x"
prices."gpt-x" = { input_per_mtok = 1.5, output_per_mtok = 6 }
prices."*" = { input_per_mtok = 0, output_per_mtok = 0 }

[providers.rulebased]
chunk_delay_ms = 0

[agents.writer]
provider = "openai"
model = "gpt-x"
system_prompt = "Write well."
options = { temperature = 0.3, max_tokens = 100, stop = ["END"] }

[agents."ops:bot-1.v2"]
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tokenwire.toml"
    path.write_text(text)
    return str(path)


def load_text(tmp_path: Path, text: str, **env: str) -> Config:
    return load_config(write(tmp_path, text), environ=env)


def error_of(tmp_path: Path, text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, **env)
    return str(info.value)


# ---- defaults and round-trip -----------------------------------------------------------------


def test_defaults_without_a_file() -> None:
    config = load_config(environ={})
    assert config.server == ServerConfig()
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8000
    assert config.server.auth_tokens == []
    assert config.server.max_message_bytes == 1_048_576
    assert config.streaming == StreamingConfig()
    assert config.streaming.enabled is True
    assert config.streaming.default_provider == "rulebased"
    assert config.streaming.max_concurrent_streams == 1000
    assert config.streaming.max_streams_per_connection == 16
    assert config.streaming.stream_timeout_seconds == 600
    assert config.streaming.first_token_timeout_seconds == 60
    assert config.streaming.idle_timeout_seconds == 60
    assert config.streaming.buffer_size == 262144
    assert config.streaming.keepalive_seconds == 15
    assert config.upstream == UpstreamConfig(
        max_connections=1000, pool_timeout_seconds=10, keepalive_seconds=15, connect_timeout_seconds=10
    )
    assert config.providers == {}
    assert config.agents == {
        "assistant": AgentConfig(provider="rulebased", system_prompt="You are a helpful assistant.")
    }


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_text(tmp_path, "") == load_config(environ={})


def test_full_file_round_trip(tmp_path: Path) -> None:
    config = load_text(tmp_path, FULL)
    assert config == Config(
        server=ServerConfig(
            host="0.0.0.0",
            port=9001,
            auth_tokens=["t1", "t2"],
            allowed_origins=["https://example.com"],
            max_message_bytes=2048,
        ),
        streaming=StreamingConfig(
            enabled=False,
            default_provider="openai",
            max_concurrent_streams=5,
            max_streams_per_connection=2,
            stream_timeout_seconds=30,
            first_token_timeout_seconds=2.5,
            idle_timeout_seconds=10,
            buffer_size=4096,
            keepalive_seconds=1,
        ),
        upstream=UpstreamConfig(
            max_connections=50, pool_timeout_seconds=2, keepalive_seconds=5, connect_timeout_seconds=3
        ),
        providers={
            "openai": ProviderConfig(
                base_url="https://api.example.com/v1",
                default_model="gpt-x",
                prices={
                    "gpt-x": Price(input_per_mtok=1.5, output_per_mtok=6),
                    "*": Price(input_per_mtok=0, output_per_mtok=0),
                },
            ),
            "rulebased": ProviderConfig(chunk_delay_ms=0),
        },
        agents={
            "writer": AgentConfig(
                provider="openai",
                model="gpt-x",
                system_prompt="Write well.",
                options=Options(temperature=0.3, max_tokens=100, stop=["END"]),
            ),
            "ops:bot-1.v2": AgentConfig(),
        },
    )
    assert isinstance(config.streaming.stream_timeout_seconds, float)
    assert type(config.agents["writer"].options) is Options


def test_config_is_frozen() -> None:
    config = load_config(environ={})
    with pytest.raises(AttributeError):
        config.server.port = 1  # type: ignore[misc]


def test_provider_names_are_not_validated(tmp_path: Path) -> None:
    config = load_text(tmp_path, '[providers.nosuch]\nbase_url = "x"\n[streaming]\ndefault_provider = "zz"')
    assert config.providers["nosuch"].base_url == "x"
    assert config.streaming.default_provider == "zz"


# ---- file errors -----------------------------------------------------------------------------


def test_unknown_key_in_section(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[streaming]\nfoo = 1") == "config: unknown key `streaming.foo`"


def test_unknown_top_level_section(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[logging]\nlevel = 'debug'") == "config: unknown key `logging`"


def test_unknown_key_in_named_tables(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[providers.openai]\napi_kee = 'x'") == (
        "config: unknown key `providers.openai.api_kee`"
    )
    assert error_of(tmp_path, "[providers.p.prices.m]\ninput_per_mtok = 1\noutput_per_mtok = 1\nx = 1") == (
        "config: unknown key `providers.p.prices.m.x`"
    )
    assert error_of(tmp_path, "[agents.x]\nprompt = 'hi'") == "config: unknown key `agents.x.prompt`"
    assert error_of(tmp_path, "[agents.x.options]\ntemprature = 1") == (
        "config: unknown key `agents.x.options.temprature`"
    )


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[streaming]\nmax_concurrent_streams = 'many'") == (
        "config: `streaming.max_concurrent_streams`: Expected `int`, got `str`"
    )
    assert error_of(tmp_path, "[server]\nauth_tokens = ['ok', 3]") == (
        "config: `server.auth_tokens[1]`: Expected `str`, got `int`"
    )
    assert error_of(tmp_path, "providers = 5") == "config: `providers`: Expected `object`, got `int`"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[server]\nport = 0", "server.port"),
        ("[server]\nport = 65536", "server.port"),
        ("[server]\nmax_message_bytes = 1023", "server.max_message_bytes"),
        ("[server]\nmax_message_bytes = 16777217", "server.max_message_bytes"),
        ("[server]\nauth_tokens = ['']", "server.auth_tokens[0]"),
        ("[streaming]\nmax_concurrent_streams = 0", "streaming.max_concurrent_streams"),
        ("[streaming]\nmax_streams_per_connection = 0", "streaming.max_streams_per_connection"),
        ("[streaming]\nstream_timeout_seconds = 0", "streaming.stream_timeout_seconds"),
        ("[streaming]\nidle_timeout_seconds = -1", "streaming.idle_timeout_seconds"),
        ("[streaming]\nbuffer_size = 1000", "streaming.buffer_size"),
        ("[streaming]\nkeepalive_seconds = 0", "streaming.keepalive_seconds"),
        ("[upstream]\nmax_connections = 0", "upstream.max_connections"),
        ("[upstream]\npool_timeout_seconds = 0", "upstream.pool_timeout_seconds"),
        ("[upstream]\nkeepalive_seconds = 3601", "upstream.keepalive_seconds"),
        ("[upstream]\nconnect_timeout_seconds = -1", "upstream.connect_timeout_seconds"),
        ("[providers.rulebased]\nchunk_delay_ms = 60001", "providers.rulebased.chunk_delay_ms"),
        (
            "[providers.p.prices.m]\ninput_per_mtok = -1\noutput_per_mtok = 1",
            "providers.p.prices.m.input_per_mtok",
        ),
    ],
)
def test_out_of_range_value(tmp_path: Path, text: str, key: str) -> None:
    assert error_of(tmp_path, text).startswith(f"config: `{key}`: Expected ")


def test_price_needs_both_fields(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[providers.p.prices.m]\ninput_per_mtok = 1")
    assert message == "config: `providers.p.prices.m`: Object missing required field `output_per_mtok`"


def test_range_bounds_are_inclusive(tmp_path: Path) -> None:
    config = load_text(tmp_path, "[server]\nport = 65535\nmax_message_bytes = 16777216")
    assert (config.server.port, config.server.max_message_bytes) == (65535, 16777216)


def test_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"^config: cannot read .*nope\.toml: No such file"):
        load_config(missing, environ={})


def test_invalid_toml(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[server\nport = 1")
    assert message.startswith(f"config: {tmp_path / 'tokenwire.toml'} is not valid TOML: ")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b'host = "\xff"')
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(str(path), environ={})


# ---- environment overrides -------------------------------------------------------------------


def test_env_overrides_bool_int_float_string_list() -> None:
    config = load_config(
        environ={
            "TOKENWIRE_STREAMING__ENABLED": "false",
            "TOKENWIRE_SERVER__PORT": "9000",
            "TOKENWIRE_STREAMING__KEEPALIVE_SECONDS": "1.5",
            "TOKENWIRE_SERVER__HOST": "example.org",
            "TOKENWIRE_SERVER__AUTH_TOKENS": '["a", "b"]',
        }
    )
    assert config.streaming.enabled is False
    assert config.server.port == 9000
    assert config.streaming.keepalive_seconds == 1.5
    assert config.server.host == "example.org"
    assert config.server.auth_tokens == ["a", "b"]


def test_env_override_nested_provider_key() -> None:
    config = load_config(environ={"TOKENWIRE_PROVIDERS__RULEBASED__CHUNK_DELAY_MS": "10"})
    assert config.providers == {"rulebased": ProviderConfig(chunk_delay_ms=10)}


def test_env_names_are_case_insensitive() -> None:
    assert load_config(environ={"tokenwire_Server__Port": "1234"}).server.port == 1234


def test_env_beats_file_and_keeps_other_keys(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        "[server]\nport = 1111\nhost = 'h'\n[providers.rulebased]\nchunk_delay_ms = 5\ndefault_model = 'm'",
        TOKENWIRE_SERVER__PORT="2222",
        TOKENWIRE_PROVIDERS__RULEBASED__CHUNK_DELAY_MS="7",
    )
    assert (config.server.port, config.server.host) == (2222, "h")
    assert config.providers["rulebased"] == ProviderConfig(chunk_delay_ms=7, default_model="m")


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={"TOKENWIRE_SERVER__PORT": "eighty"})
    assert str(info.value) == (
        "config: `server.port`: Expected `int`, got `str` (from environment variable TOKENWIRE_SERVER__PORT)"
    )
    with pytest.raises(
        ConfigError, match=r"`server\.port`: Expected `int` <= 65535 .*TOKENWIRE_SERVER__PORT"
    ):
        load_config(environ={"TOKENWIRE_SERVER__PORT": "70000"})


def test_env_unknown_key_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={"TOKENWIRE_STREAMING__FOO": "1"})
    assert str(info.value) == (
        "config: unknown key `streaming.foo` (from environment variable TOKENWIRE_STREAMING__FOO)"
    )


def test_env_override_into_a_non_table(tmp_path: Path) -> None:
    message = error_of(tmp_path, "providers = 5", TOKENWIRE_PROVIDERS__X__BASE_URL="u")
    assert (
        message
        == "config: TOKENWIRE_PROVIDERS__X__BASE_URL overrides inside `providers`, which is not a table"
    )


def test_plain_tokenwire_variables_are_not_overrides(tmp_path: Path) -> None:
    config = load_config(environ={"TOKENWIRE_LOG_LEVEL": "debug", "TOKENWIRE_CONFIG": ""})
    assert config == load_config(environ={})


def test_tokenwire_config_used_when_path_is_none(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 4321")
    assert load_config(environ={"TOKENWIRE_CONFIG": path}).server.port == 4321
    # An explicit path wins over the variable.
    other = tmp_path / "other.toml"
    other.write_text("[server]\nport = 1")
    assert load_config(str(other), environ={"TOKENWIRE_CONFIG": path}).server.port == 1


def test_tokenwire_config_missing_file_says_where_it_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*gone\.toml \(from TOKENWIRE_CONFIG\)"):
        load_config(environ={"TOKENWIRE_CONFIG": str(tmp_path / "gone.toml")})


def test_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TOKENWIRE_CONFIG", raising=False)
    monkeypatch.setenv("TOKENWIRE_SERVER__PORT", "8123")
    assert load_config().server.port == 8123


# ---- agents ----------------------------------------------------------------------------------


def test_default_agent_present_without_agents_table(tmp_path: Path) -> None:
    config = load_text(tmp_path, "[server]\nport = 8001")
    assert list(config.agents) == ["assistant"]
    assert config.agents["assistant"].provider == "rulebased"
    assert config.agents["assistant"].system_prompt == "You are a helpful assistant."
    assert config.agents["assistant"].options == Options()


def test_defined_agents_replace_the_default(tmp_path: Path) -> None:
    config = load_text(tmp_path, "[agents.x]\nmodel = 'm'")
    assert config.agents == {"x": AgentConfig(model="m")}
    assert load_text(tmp_path, "[agents]").agents == {}


def test_agent_options_are_validated(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[agents.x.options]\ntemperature = 5")
    assert message.startswith("config: `agents.x.options.temperature`: Expected `float` <= 2")
    message = error_of(tmp_path, "[agents.x]\noptions = { stop = [1] }")
    assert message == "config: `agents.x.options.stop[0]`: Expected `str`, got `int`"


def test_agent_option_from_env(tmp_path: Path) -> None:
    config = load_text(tmp_path, "[agents.x]\nmodel = 'm'", TOKENWIRE_AGENTS__X__OPTIONS__TEMPERATURE="0.5")
    assert config.agents["x"] == AgentConfig(model="m", options=Options(temperature=0.5))
    with pytest.raises(ConfigError, match="TOKENWIRE_AGENTS__X__OPTIONS__TEMPERATURE"):
        load_config(environ={"TOKENWIRE_AGENTS__X__OPTIONS__TEMPERATURE": "9"})


def test_env_override_adjusts_the_default_agent_instead_of_replacing_it() -> None:
    config = load_config(environ={"TOKENWIRE_AGENTS__ASSISTANT__MODEL": "m1"})
    assert config.agents == {
        "assistant": AgentConfig(
            provider="rulebased", model="m1", system_prompt="You are a helpful assistant."
        )
    }


@pytest.mark.parametrize("agent_id", ["has space", "a/b", "x" * 65, ""])
def test_bad_agent_id_rejected(tmp_path: Path, agent_id: str) -> None:
    message = error_of(tmp_path, f'[agents."{agent_id}"]\nmodel = "m"')
    assert message == f"config: `agents.{agent_id}`: agent id must be 1-64 characters of A-Za-z0-9._:-"


def test_longest_agent_id_accepted(tmp_path: Path) -> None:
    assert list(load_text(tmp_path, f"[agents.{'a' * 64}]").agents) == ["a" * 64]


def test_the_upstream_section_configures_the_providers_http_client() -> None:
    upstream = UpstreamConfig(max_connections=7, pool_timeout_seconds=3, keepalive_seconds=4)
    app = create_app(Config(upstream=upstream), environ={})
    provider = app.state.hub.registry.get("openai")
    assert isinstance(provider, HttpProvider)
    client = provider.client
    assert (client._max_connections, client._pool_timeout, client._keepalive) == (7, 3, 4)
    assert client._connect_timeout == 10


def test_an_https_proxy_for_a_configured_provider_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://user:secret@proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    create_app(Config(), environ={})  # no provider configured: nothing would use the proxy
    with pytest.raises(ConfigError, match=r"proxy for provider `openai` .*must be http://") as refused:
        create_app(Config(), environ={"OPENAI_API_KEY": "sk-test"})
    assert "secret" not in str(refused.value)
