"""The typed parts of an offline turn (protocol v1.1): which tools it calls and with what
arguments, its answer to tool results, JSON output, and its reasoning passage.

Pure and deterministic: everything follows from the request, so clients can predict it
(docs/STREAMING_GUIDE.md, "Tools, reasoning and JSON", states the rules). ``rulebased`` streams it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from protocol.messages import ChatMessage, JsonFormat, JsonSchemaFormat, Tool, ToolChoiceName
from providers.base import GenerationRequest
from providers.offline.prompt_facts import QUOTE_LIMIT, Facts
from providers.offline.schema_values import value_for

REASONING_QUOTE = 80  # characters of the prompt quoted in the reasoning
NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}
How = Literal["named", "required", "chosen"]


class Call(msgspec.Struct, frozen=True):
    call_id: str
    name: str
    arguments: str  # JSON text


class ToolResult(msgspec.Struct, frozen=True):
    name: str | None  # the called tool's name, when an assistant message names the call
    content: str


def last_user(messages: list[ChatMessage]) -> str:
    """The prompt: the last ``user`` message's text."""
    return next((m.text for m in reversed(messages) if m.role == "user"), "")


def quote(text: str) -> str:
    """``text`` as an answer quotes it: up to QUOTE_LIMIT characters, then an ellipsis."""
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "…"


# ---- tool calls ------------------------------------------------------------------------------


def _names_tool(prompt: str, name: str) -> int | None:
    """Where ``prompt`` names the tool: its name, any case, not part of a longer name."""
    match = re.search(rf"(?<![A-Za-z0-9_-]){re.escape(name)}(?![A-Za-z0-9_-])", prompt, re.IGNORECASE)
    return match.start() if match else None


def choose_tools(request: GenerationRequest, prompt: str) -> tuple[list[Tool], How]:
    """The tools this turn calls, in order, and why. None after tool results (so a client's
    tool loop ends), with ``tool_choice: "none"``, or when nothing asks for one."""
    tools = request.tools or []
    choice = request.tool_choice
    if not tools or choice == "none" or trailing_results(request.messages):
        return [], "named"
    if isinstance(choice, ToolChoiceName):
        return [t for t in tools if t.name == choice.name][:1], "chosen"
    mentions = [(at, tool) for tool in tools if (at := _names_tool(prompt, tool.name)) is not None]
    named = [tool for _, tool in sorted(mentions, key=lambda pair: pair[0])]
    if named or choice != "required":
        return named, "named"
    return tools[:1], "required"


def make_calls(request: GenerationRequest, prompt: str, tools: Sequence[Tool]) -> list[Call]:
    """One call per tool, arguments from its schema and the prompt. The prompt's numbers are
    shared out in call order: "add 2 and 3, multiply 4 and 5" gives add(2, 3), multiply(4, 5)."""
    if not tools:
        return []  # a text turn: no need to read the prompt for values
    facts = Facts(prompt, ignore=_tool_names(request))
    calls = []
    for index, tool in enumerate(tools):
        value = value_for(tool.parameters if tool.parameters is not None else NO_ARGUMENTS, facts)
        arguments = value if isinstance(value, dict) else {}
        calls.append(Call(_call_id(request.messages, index, tool.name), tool.name, to_json(arguments)))
    return calls


def _tool_names(request: GenerationRequest) -> frozenset[str]:
    """Never a name or a place in a value: "Use Clock for Rome" names the tool, not a person."""
    return frozenset(t.name for t in request.tools or [])


def _call_id(messages: list[ChatMessage], index: int, name: str) -> str:
    """Deterministic, and different in every turn of a conversation (the messages differ)."""
    digest = hashlib.sha256(msgspec.json.encode(["call", messages, index, name])).hexdigest()
    return "call_" + digest[:24]


def to_json(value: Any) -> str:
    """JSON with a space after ``:`` and ``,``, so it streams in word-sized pieces."""
    return json.dumps(value, ensure_ascii=False)


# ---- tool results ----------------------------------------------------------------------------


def trailing_results(messages: list[ChatMessage]) -> list[ToolResult]:
    """The ``tool`` messages that end the conversation, in order, each with its tool's name."""
    run: list[ChatMessage] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        run.append(message)
    names = {call.call_id: call.name for m in messages for call in m.tool_calls or []}
    return [ToolResult(names.get(m.tool_call_id or ""), m.text) for m in reversed(run)]


def results_answer(results: list[ToolResult]) -> str:
    """One line per result: ``The get_weather tool returned: {"temp": 21}``."""
    lines = [f"The {r.name + ' ' if r.name else ''}tool returned: {quote(r.content)}" for r in results]
    return "\n".join(lines)


# ---- structured output -----------------------------------------------------------------------


def json_output(request: GenerationRequest, prompt: str, plain: str) -> str | None:
    """The turn's text under ``response_format``: for ``json_schema`` a value generated from the
    schema, drawing on the prompt and on the tool results the turn answers; for
    ``json`` the plain answer as ``{"question", "answer"}``; None for text."""
    response_format = request.response_format
    if isinstance(response_format, JsonSchemaFormat):
        data = "\n".join(r.content for r in trailing_results(request.messages))
        return to_json(
            value_for(response_format.schema, Facts(prompt, data=data, ignore=_tool_names(request)))
        )
    if isinstance(response_format, JsonFormat):
        return to_json({"question": quote(prompt), "answer": plain})
    return None


# ---- reasoning -------------------------------------------------------------------------------

_SENTENCES = {"low": 2, "medium": 3, "high": 4}
_CHECK = "I will check that each part follows from the request."
_READY = "Nothing else is missing, so I can answer now."


def reasoning_text(request: GenerationRequest, prompt: str, calls: list[Call], how: How) -> str:
    """A short passage: what is asked, what this turn does, then (by effort) a check and a
    conclusion: 2 sentences for ``low``, 3 by default and for ``medium``, 4 for ``high``."""
    effort = request.reasoning.effort if request.reasoning else None
    sentences = [_asked(request, prompt), _plan(request, calls, how), _CHECK, _READY]
    return " ".join(sentences[: _SENTENCES.get(effort or "medium", 3)])


def _asked(request: GenerationRequest, prompt: str) -> str:
    results = trailing_results(request.messages)
    if results:
        names = [r.name for r in results if r.name]
        tools = f"{_listed(names)} tool" if len(names) == len(results) else "tool"
        plural = len(results) > 1
        return f"The {tools}{'s' if plural else ''} returned {'results' if plural else 'a result'}."
    if request.brief is not None:
        return f'The brief asks for a video script about "{request.brief.topic[:REASONING_QUOTE]}".'
    if prompt:
        short = prompt if len(prompt) <= REASONING_QUOTE else prompt[:REASONING_QUOTE] + "…"
        return f'The user asks: "{short}".'
    return "The request holds no question."


def _plan(request: GenerationRequest, calls: list[Call], how: How) -> str:
    if calls:
        names = _listed([c.name for c in calls])
        if how == "chosen":
            return f"The tool choice asks for {names}, so I will call it."
        if how == "required":
            return f"A tool call is required and none is named, so I will call {names}, the first tool."
        them = "them" if len(calls) > 1 else "it"
        return f"The prompt names {names}, so I will call {them} with arguments that fit the schema."
    if trailing_results(request.messages):
        return "I will answer by quoting what was returned."
    if isinstance(request.response_format, JsonSchemaFormat):
        return f'The answer must be JSON matching the "{request.response_format.name}" schema.'
    if isinstance(request.response_format, JsonFormat):
        return "The answer must be a JSON object."
    if request.brief is not None:
        return "I will draft the scenes and fit the narration to the plan."
    return "I will answer with a short introduction and three points."


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
