"""The anthropic provider's ``provider_state``: the turn's thinking blocks, as Anthropic takes
them back. One format, written by the anthropic dialect's parser and by the Anthropic Messages
API (from the blocks a client passes back), and read by the dialect when it builds the next
request. Tagged with the provider, so another provider's state (after a failover) or garbage
reads as no blocks, never an error. Pure."""

from __future__ import annotations

from typing import Literal

import msgspec


class ThinkingBlock(msgspec.Struct, tag="thinking", tag_field="type", frozen=True):
    thinking: str
    signature: str


class RedactedThinkingBlock(msgspec.Struct, tag="redacted_thinking", tag_field="type", frozen=True):
    data: str


StateBlock = ThinkingBlock | RedactedThinkingBlock


class _State(msgspec.Struct, frozen=True, kw_only=True):
    provider: Literal["anthropic"]
    blocks: list[StateBlock]


_state = msgspec.json.Decoder(_State)
_json = msgspec.json.Encoder()


def encode_state(blocks: list[StateBlock]) -> str:
    return _json.encode(_State(provider="anthropic", blocks=blocks)).decode()


def replay_blocks(state: str | None) -> list[StateBlock]:
    """The blocks of an anthropic ``provider_state``; none for anything else."""
    if not state:
        return []
    try:
        return _state.decode(state).blocks
    except (msgspec.DecodeError, UnicodeError):
        return []
