"""The offline provider: deterministic, rule-based drafts streamed a few words at a time.

It needs no network and no key, so demos and tests work anywhere. A brief becomes a video script
in the format ``providers.prompts`` asks live models for; plain messages get a short templated
answer to the last user message. The text depends only on the request (an RNG seeded from a
SHA-256 of it, never ``hash()``), so it is identical across processes and restarts.

Protocol v1.1 parts (``providers.offline.parts``): tool calls when the prompt names a tool or
``tool_choice`` requires one, an answer quoting tool results, JSON for ``response_format``, and
a reasoning passage first when ``reasoning`` is set. A request without them streams as before.

Options: ``stop`` and ``max_tokens`` are honoured; ``temperature`` and ``top_p`` are accepted and
ignored, since there is no sampling for them to steer.

Faults (``GenerationRequest.fault``, see ``providers.offline.faults``): a late first chunk, and a stall, a
typed error or a truncated stream after N chunks. Every wait goes through the injected ``sleep``,
so cancelling the consumer stops a delayed or stalled stream at once.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Literal

import msgspec

from protocol.messages import Brief, JsonFormat, JsonSchemaFormat, Plan
from providers import prompts
from providers.base import (
    Completion,
    Finish,
    GenerationRequest,
    GeneratorProvider,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from providers.offline import faults, parts
from providers.offline import script_templates as tpl
from providers.offline.parts import Call, last_user, quote
from providers.tokens import estimate_tokens, tokens_for_chars
from providers.tool_calls import ToolCallTracker

DEFAULT_MODEL = "script"  # the drafter has one behaviour; the model name is only a label
_TOKEN = re.compile(r"\s*\S+\s*")  # a word with the whitespace around it, so chunks re-join exactly
STALL_SLEEP_S = 3600.0  # a stalled stream sleeps this long, again and again, until cancelled


def _rng(*parts: object) -> random.Random:
    # msgspec encodes structs field by field in a fixed order: a canonical, process-independent key.
    digest = hashlib.sha256(msgspec.json.encode(parts)).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _count(text: str) -> int:
    return len(text.split())


# ---- scripts ---------------------------------------------------------------------------------


def _phrase(text: str, max_words: int, fallback: str) -> str:
    """A brief field fit for the middle of a sentence; too long to read aloud -> the fallback."""
    text = prompts.one_line(text).rstrip(" .!?;:,")
    return text if text and _count(text) <= max_words else fallback


def _inline_topic(topic: str) -> str:
    # Mid-sentence: "Solar panels" -> "solar panels", "The Roman Empire" -> "the Roman Empire",
    # but "Roman roads" and "NASA" stay as written.
    first, space, rest = topic.partition(" ")
    article = first in ("The", "A", "An") and bool(rest)
    if article or (first.istitle() and first.isalpha() and not any(c.isupper() for c in rest)):
        return first.lower() + space + rest
    return topic


def _slots(brief: Brief) -> dict[str, str]:
    topic = _inline_topic(_phrase(brief.topic, 8, "this topic"))
    return {
        "t": topic,
        "T": topic[0].upper() + topic[1:],
        "a": _phrase(brief.audience, 10, "you"),
        "g": _phrase(brief.goal, 14, "get the essentials"),
    }


def _tone_family(tone: str) -> str:
    words = set(re.findall(r"[a-z]+", tone.lower()))
    return next((family for family, keys in tpl.TONE_KEYWORDS.items() if words & keys), "friendly")


def _beats(scenes: int) -> list[str]:
    body = [tpl.BODY_BEATS[i % len(tpl.BODY_BEATS)] for i in range(scenes - 2)]
    return [tpl.HOOK, *body, tpl.CLOSE]


def _split_evenly(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _fit(rng: random.Random, sentences: list[str], budget: int) -> tuple[list[str], int]:
    """Pick sentences in a random priority while they fit ``budget`` words; keep their order."""
    chosen: set[int] = set()
    for i in rng.sample(range(len(sentences)), len(sentences)):
        if _count(sentences[i]) <= budget:
            chosen.add(i)
            budget -= _count(sentences[i])
    return [sentences[i] for i in sorted(chosen)], budget


def _fillers(rng: random.Random, words: int) -> list[str]:
    longest = max(tpl.FILLERS)
    pads: list[str] = []
    while words > 0:
        # Never strand a one-word pad when the remainder can be split into longer ones.
        size = words if words <= longest else (longest - 1 if words == longest + 1 else longest)
        pads.append(rng.choice(tpl.FILLERS[size]))
        words -= size
    return pads


def _narration(rng: random.Random, beat: str, budget: int, slots: dict[str, str], tone: str) -> str:
    """Exactly ``budget`` words: the beat's sentences, topped up with general ones and pads."""
    bank = [s.format(**slots) for s in tpl.NARRATION[beat]]
    if beat == tpl.HOOK:
        bank.insert(0, rng.choice(tpl.TONE_OPENERS[tone]))
    if beat == tpl.CLOSE:
        bank.append(rng.choice(tpl.TONE_CLOSERS[tone]))
    main, left = _fit(rng, bank, budget)
    general, left = _fit(rng, tpl.GENERAL, left)
    # Padding goes before the beat's last sentence so a closing line stays last.
    middle = general + _fillers(rng, left)
    return " ".join(main[:-1] + middle + main[-1:])


def _script(brief: Brief, plan: Plan) -> str:
    # float(): a duration of 45 and 45.0 (as JSON decodes it) must seed the same text.
    rng = _rng(
        "script",
        brief,
        msgspec.structs.replace(plan, target_duration_seconds=float(plan.target_duration_seconds)),
    )
    slots, tone = _slots(brief), _tone_family(brief.tone)
    title = prompts.one_line(brief.topic) or "Untitled"
    title = title[0].upper() + title[1:100] + ("…" if len(title) > 100 else "")
    lines = [f"Title: {title} — {rng.choice(tpl.TITLE_SUFFIXES)}", prompts.header_line(brief, plan)]
    language = brief.language.strip()
    if language and not language.lower().startswith("en"):
        lines.append(f'Language: "{language}" was requested; the offline drafter writes English.')
    scenes = prompts.scene_count(plan)
    budgets = _split_evenly(prompts.target_words(plan), scenes)
    bounds = [plan.target_duration_seconds * i / scenes for i in range(scenes + 1)]
    for i, beat in enumerate(_beats(scenes)):
        span = prompts.clock(bounds[i]) + prompts.SPAN_DASH + prompts.clock(bounds[i + 1])
        lines += [
            "",
            f"Scene {i + 1} — {beat} ({span})",
            f"Visual: {rng.choice(tpl.VISUALS[beat]).format(**slots)}",
            f"Narration: {_narration(rng, beat, budgets[i], slots, tone)}",
        ]
    return "\n".join(lines)


# ---- plain prompts ---------------------------------------------------------------------------


def _answer(prompt: str) -> str:
    # Seeded from the prompt alone: a system message changes nothing, by design.
    rng = _rng("prompt", prompt)
    if prompt:
        first = f'You asked: "{quote(prompt)}"'
    else:
        first = "No question came with this request, so here is a general framework."
    points = [tpl.POINTS[i] for i in sorted(rng.sample(range(len(tpl.POINTS)), 3))]
    numbered = [f"{n}. {point}" for n, point in enumerate(points, 1)]
    return "\n".join([first, "", rng.choice(tpl.INTROS), "", *numbered, "", rng.choice(tpl.CLOSINGS)])


# ---- text, cuts and chunks -------------------------------------------------------------------


def _plain_text(request: GenerationRequest, prompt: str) -> str:
    results = parts.trailing_results(request.messages)
    if results:
        return parts.results_answer(results)
    if request.brief is not None:
        return _script(request.brief, request.plan or Plan())
    return _answer(prompt)


def draft_text(request: GenerationRequest) -> str:
    """The full text for ``request``, before ``stop`` and ``max_tokens`` cuts: the answer to
    tool results, the script of a brief or the answer to the prompt, as JSON when asked for."""
    prompt = last_user(request.messages).strip()
    plain = _plain_text(request, prompt)
    return parts.json_output(request, prompt, plain) or plain


def split_chunks(text: str, words: int) -> list[str]:
    """Groups of ``words`` words, whitespace kept, so ``"".join(chunks) == text``."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return [text] if text else []
    size = max(1, words)
    return ["".join(tokens[i : i + size]) for i in range(0, len(tokens), size)]


def _cut_at_stop(text: str, stop: str | list[str] | None) -> str:
    stops = [stop] if isinstance(stop, str) else (stop or [])
    hits = [text.find(s) for s in stops if s and s in text]
    return text[: min(hits)] if hits else text


def _cut_to_tokens(text: str, max_tokens: int) -> str:
    """The longest whole-word prefix within ``max_tokens``; characters only if no word fits."""
    kept = 0  # characters: the estimate depends on length only
    for word in split_chunks(text, 1):
        if tokens_for_chars(kept + len(word)) > max_tokens:
            break
        kept += len(word)
    if kept or not text:
        return text[:kept]
    cut = split_chunks(text, 1)[0]  # one short word ("Title: ", "You "): trimming it is cheap
    while cut and estimate_tokens(cut) > max_tokens:
        cut = cut[:-1]
    return cut


def render(request: GenerationRequest) -> tuple[str, str]:
    """The text to emit and its finish reason, after the request's options."""
    options = request.options
    text = _cut_at_stop(draft_text(request), options.stop)
    if options.max_tokens is not None and estimate_tokens(text) > options.max_tokens:
        return _cut_to_tokens(text, options.max_tokens), "length"
    return text, "stop"


class Turn(msgspec.Struct, frozen=True):
    """What one offline turn produces, in stream order: reasoning, tool calls, then text."""

    reasoning: str
    calls: list[Call]
    text: str
    finish: str
    json: bool = False  # the text is JSON: it streams a JSON word a chunk, like arguments


def plan_turn(request: GenerationRequest) -> Turn:
    """The whole turn for ``request``, after its options."""
    prompt = last_user(request.messages).strip()
    tools, how = parts.choose_tools(request, prompt)
    calls = parts.make_calls(request, prompt, tools)
    if calls:
        calls, finish = _cut_calls(calls, request.options.max_tokens)
        text = ""
    else:
        text, finish = render(request)
    json = not calls and isinstance(request.response_format, JsonFormat | JsonSchemaFormat)
    reasoning = ""
    if request.reasoning is not None:
        reasoning = parts.reasoning_text(request, prompt, calls, how)
        budget = request.reasoning.budget_tokens
        if budget is not None and estimate_tokens(reasoning) > budget:
            reasoning = _cut_to_tokens(reasoning, budget)
    return Turn(reasoning, calls, text, finish, json)


def _cut_calls(calls: list[Call], max_tokens: int | None) -> tuple[list[Call], str]:
    """The calls whose arguments fit ``max_tokens``; the first that does not is cut there (its
    arguments then fail to parse) and ends the turn with "length"."""
    room = max_tokens * 4 if max_tokens is not None else None  # characters: ~4 a token
    kept: list[Call] = []
    for call in calls:
        if room is not None and len(call.arguments) > room:
            if room:
                kept.append(msgspec.structs.replace(call, arguments=call.arguments[:room]))
            return kept, "length"
        kept.append(call)
        room = None if room is None else room - len(call.arguments)
    return kept, "tool_calls"


def turn_events(turn: Turn, words: int) -> list[StreamEvent]:
    """The turn as stream events: reasoning and text in chunks of ``words`` words; each call's
    arguments, and JSON text, one JSON word a chunk, so clients see them fill in."""
    out: list[StreamEvent] = [ReasoningDelta(chunk) for chunk in split_chunks(turn.reasoning, words)]
    tracker = ToolCallTracker()
    for index, call in enumerate(turn.calls):
        tracker.start(index, call.call_id, call.name, out)
        for fragment in split_chunks(call.arguments, 1):
            tracker.delta(index, fragment, out)
        tracker.end(index, out)
    out += [TextDelta(chunk) for chunk in split_chunks(turn.text, 1 if turn.json else words)]
    return out


def completion_parts(turn: Turn) -> list[StreamEvent]:
    """The non-text events of a non-streaming reply: the reasoning whole, each call whole."""
    out: list[StreamEvent] = [ReasoningDelta(turn.reasoning)] if turn.reasoning else []
    tracker = ToolCallTracker()
    for index, call in enumerate(turn.calls):
        tracker.whole(index, call.call_id, call.name, call.arguments, out)
    return out


def _is_chunk(event: StreamEvent) -> bool:
    """A piece of content: what pacing spaces out and what a fault counts."""
    return type(event) in (TextDelta, ReasoningDelta, ToolCallDelta)


def _prompt_text(request: GenerationRequest) -> str:
    """What the prompt estimate counts: the messages' text, plus (when given) the tools, the
    calls passed back and the output schema as JSON."""
    text = "\n".join(m.text for m in request.messages)
    extras: list[object] = [m.tool_calls for m in request.messages if m.tool_calls]
    if request.tools:
        extras.append(request.tools)
    if isinstance(request.response_format, JsonSchemaFormat):
        extras.append(request.response_format.schema)
    return "\n".join([text, *(msgspec.json.encode(e).decode() for e in extras)])


def _usage(request: GenerationRequest, turn: Turn) -> Usage:
    reasoning = estimate_tokens(turn.reasoning)
    arguments = sum(estimate_tokens(call.arguments) for call in turn.calls)
    return Usage(
        prompt_tokens=estimate_tokens(_prompt_text(request)),
        completion_tokens=estimate_tokens(turn.text) + arguments + reasoning,
        estimated=True,
        reasoning_tokens=reasoning if request.reasoning is not None else None,
    )


# ---- the provider ----------------------------------------------------------------------------


class RuleBasedProvider(GeneratorProvider):
    """Always configured; streams ``words_per_chunk`` words every ``chunk_delay_ms``."""

    def __init__(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]],
        chunk_delay_ms: float = 50.0,
        words_per_chunk: int = 5,
        default_model: str = DEFAULT_MODEL,
    ) -> None:
        if chunk_delay_ms < 0:
            raise ValueError("chunk_delay_ms must be >= 0")
        if words_per_chunk < 1:
            raise ValueError("words_per_chunk must be >= 1")
        self._sleep = sleep
        self._delay_s = chunk_delay_ms / 1000
        self._words = words_per_chunk
        self._default_model = default_model

    @property
    def name(self) -> str:
        return "rulebased"

    @property
    def streaming(self) -> Literal["native", "simulated"]:
        return "native"

    @property
    def default_model(self) -> str:
        return self._default_model

    @property
    def configured(self) -> bool:
        return True

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        turn = plan_turn(request)
        events = turn_events(turn, self._words)
        fault = faults.plan(request.fault, sum(map(_is_chunk, events)), self.name)
        if fault.delay_s > 0:
            await self._sleep(fault.delay_s)
        sent = 0
        for event in events if fault.chunks != 0 else ():
            chunk = _is_chunk(event)
            # Sleep between chunks only: the first chunk is immediate, nothing trails the last.
            if chunk and sent and self._delay_s > 0:
                await self._sleep(self._delay_s)
            yield event
            sent += chunk
            if sent == fault.chunks:
                break  # a break comes right after its chunk
        await self._break(fault)
        yield _usage(request, turn)
        yield Finish(turn.finish)

    async def complete(self, request: GenerationRequest) -> Completion:
        """The whole reply at once; a fault delays or breaks the call the way it would the stream."""
        turn = plan_turn(request)
        chunks = sum(map(_is_chunk, turn_events(turn, self._words)))
        fault = faults.plan(request.fault, chunks, self.name)
        if fault.delay_s > 0:
            await self._sleep(fault.delay_s)
        await self._break(fault)
        return Completion(
            text=turn.text,
            finish_reason=turn.finish,
            usage=_usage(request, turn),
            parts=completion_parts(turn),
        )

    async def _break(self, fault: faults.FaultPlan) -> None:
        """Act out the fault's break, if it has one: fail, or stall until cancelled."""
        if fault.error is not None:
            raise fault.error
        while fault.stall:
            await self._sleep(STALL_SLEEP_S)
