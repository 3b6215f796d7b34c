"""The offline provider: deterministic drafts, script sizing, chunking, pacing and options."""

from __future__ import annotations

import itertools
import re

import msgspec
import pytest

from protocol.messages import Brief, ChatMessage, Density, Options, Pacing, Plan
from providers.base import Finish, GenerationRequest, Provider, StreamEvent, TextDelta, Usage
from providers.offline.rulebased import RuleBasedProvider, draft_text, split_chunks
from providers.prompts import prompt_messages, script_messages
from providers.tokens import estimate_tokens
from tests.support.process import rulebased_in_subprocess

SCENE = re.compile(r"^Scene (\d+) — (.+) \((\d+):(\d\d)\u2013(\d+):(\d\d)\)$")

# ---- request builders ------------------------------------------------------------------------


def script_request(
    topic: str = "Solar panels",
    duration: float = 30,
    pacing: Pacing = "conversational",
    density: Density = "balanced",
    *,
    language: str = "en",
    options: Options | None = None,
) -> GenerationRequest:
    brief = Brief(topic=topic, audience="homeowners", language=language)
    plan = Plan(target_duration_seconds=duration, pacing=pacing, density=density)
    return GenerationRequest(
        model="script",
        messages=script_messages(brief, plan),
        brief=brief,
        plan=plan,
        options=options or Options(),
    )


def prompt_request(prompt: str, *, options: Options | None = None) -> GenerationRequest:
    return GenerationRequest(model="script", messages=prompt_messages(prompt), options=options or Options())


def narration_words(text: str) -> int:
    return sum(
        len(line.removeprefix("Narration:").split())
        for line in text.splitlines()
        if line.startswith("Narration:")
    )


def scene_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in filter(None, map(SCENE.match, text.splitlines())):
        m1, s1, m2, s2 = map(int, match.groups()[2:])
        spans.append((m1 * 60 + s1, m2 * 60 + s2))
    return spans


class Recorder:
    """A fake sleep that logs its calls into the same list the test logs deltas into."""

    def __init__(self, log: list[tuple[str, object]]) -> None:
        self.log = log

    async def __call__(self, seconds: float) -> None:
        self.log.append(("sleep", seconds))


async def no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")


async def collect(provider: RuleBasedProvider, request: GenerationRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


def joined(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# ---- determinism -----------------------------------------------------------------------------


def test_same_request_gives_same_text() -> None:
    assert draft_text(script_request()) == draft_text(script_request())
    assert draft_text(prompt_request("Why is the sky blue?")) == draft_text(
        prompt_request("Why is the sky blue?")
    )


def test_int_and_float_durations_give_the_same_text() -> None:
    assert draft_text(script_request(duration=45)) == draft_text(script_request(duration=45.0))


def test_different_requests_differ() -> None:
    assert draft_text(script_request("Solar panels")) != draft_text(script_request("Heat pumps"))


def test_same_text_across_processes_and_hash_seeds() -> None:
    requests = [
        script_request("Tidal energy", 45, "fast", "dense"),
        prompt_request("How do vaccines train the immune system?"),
    ]
    expected = msgspec.json.encode([draft_text(r) for r in requests])
    assert rulebased_in_subprocess("draft_text", list(requests), "1") == expected
    assert rulebased_in_subprocess("draft_text", list(requests), "2") == expected


# ---- script shape and sizing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "pacing"),
    [
        (5, "slow"),
        (30, "conversational"),
        (47.5, "fast"),
        (90, "slow"),
        (600, "fast"),
        (3600, "conversational"),
    ],
)
def test_narration_hits_the_spoken_word_target(duration: float, pacing: Pacing) -> None:
    wpm = {"slow": 120, "conversational": 150, "fast": 180}[pacing]
    target = duration * wpm / 60
    words = narration_words(draft_text(script_request("Solar panels", duration, pacing)))
    assert abs(words - target) <= 0.1 * target
    assert words == round(target)  # the drafter pads and trims to the exact count


@pytest.mark.parametrize(
    ("duration", "density", "scenes"),
    [
        (60, "sparse", 3),
        (60, "low", 3),
        (60, "balanced", 5),
        (60, "medium", 5),
        (64, "dense", 8),
        (64, "high", 8),
        (10, "sparse", 2),
        (5, "dense", 2),
        (120, "balanced", 10),
    ],
)
def test_scene_count_follows_density(duration: float, density: Density, scenes: int) -> None:
    text = draft_text(script_request("Solar panels", duration, "conversational", density))
    assert [int(m.group(1)) for m in filter(None, map(SCENE.match, text.splitlines()))] == list(
        range(1, scenes + 1)
    )
    assert text.count("\nVisual: ") == scenes
    assert text.count("\nNarration: ") == scenes


@pytest.mark.parametrize("duration", [5, 30, 47.5, 61, 600])
def test_scene_time_ranges_cover_the_duration(duration: float) -> None:
    spans = scene_spans(draft_text(script_request("Solar panels", duration, "fast", "dense")))
    assert spans[0][0] == 0
    assert spans[-1][1] == round(duration)
    assert all(end == start for (_, end), (start, _) in itertools.pairwise(spans))
    assert all(start <= end for start, end in spans)


def test_script_layout_names_the_brief() -> None:
    text = draft_text(script_request("Solar panels", 90, "slow", "sparse"))
    lines = text.splitlines()
    assert lines[0].startswith("Title: Solar panels")
    header = lines[1]
    for part in ("homeowners", "explain the topic clearly", "friendly", "explainer", "slow", "1:30"):
        assert part in header
    beats = [m.group(2) for m in filter(None, map(SCENE.match, lines))]
    assert beats[0] == "Hook"
    assert beats[-1] == "Call to action"
    assert "solar panels" in text.split("Scene 1", 1)[1]
    assert "Language:" not in text


def test_non_english_brief_adds_a_language_note() -> None:
    text = draft_text(script_request(language="de-DE"))
    assert 'Language: "de-DE" was requested; the offline drafter writes English.' in text.splitlines()[:3]


def test_long_topic_is_not_read_aloud() -> None:
    topic = " ".join(["word"] * 60)
    text = draft_text(script_request(topic, 60))
    assert narration_words(text) == 150
    assert topic not in text.split("Scene 1", 1)[1]


# ---- chunking --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["one two three four five six seven eight nine ten eleven", "  lead\n\nand  trail  \n", "a", "", "   "],
)
def test_split_chunks_rejoins_exactly(text: str) -> None:
    chunks = split_chunks(text, 5)
    assert "".join(chunks) == text
    assert all(len(chunk.split()) == 5 for chunk in chunks[:-1])


def test_split_chunks_keeps_trailing_whitespace_in_each_chunk() -> None:
    assert split_chunks("a b c\nd e f g", 3) == ["a b c\n", "d e f ", "g"]


def test_script_chunks_have_five_words() -> None:
    text = draft_text(script_request())
    chunks = split_chunks(text, 5)
    assert "".join(chunks) == text
    assert all(len(chunk.split()) == 5 for chunk in chunks[:-1])
    assert 1 <= len(chunks[-1].split()) <= 5


# ---- streaming -------------------------------------------------------------------------------


async def test_stream_paces_chunks_with_the_injected_sleep() -> None:
    log: list[tuple[str, object]] = []
    provider = RuleBasedProvider(sleep=Recorder(log), chunk_delay_ms=40)
    request = script_request()
    events: list[StreamEvent] = []
    async for event in provider.stream(request):
        events.append(event)
        if isinstance(event, TextDelta):
            log.append(("delta", event.text))
    chunks = split_chunks(draft_text(request), 5)
    assert len(chunks) > 2
    assert log[0] == ("delta", chunks[0])  # the first chunk comes before any sleep
    assert [kind for kind, _ in log] == ["delta"] + ["sleep", "delta"] * (len(chunks) - 1)
    assert [value for kind, value in log if kind == "sleep"] == [0.04] * (len(chunks) - 1)
    assert joined(events) == draft_text(request)
    assert events[-2:] == [
        Usage(
            prompt_tokens=estimate_tokens("\n".join(m.text for m in request.messages)),
            completion_tokens=estimate_tokens(draft_text(request)),
            estimated=True,
        ),
        Finish("stop"),
    ]


async def test_zero_delay_never_sleeps() -> None:
    provider = RuleBasedProvider(sleep=no_sleep, chunk_delay_ms=0, words_per_chunk=3)
    events = await collect(provider, prompt_request("What is a heat pump?"))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert all(len(d.split()) == 3 for d in deltas[:-1])
    assert isinstance(events[-2], Usage)
    assert events[-2].estimated
    assert events[-1] == Finish("stop")


def test_provider_metadata_matches_the_protocol() -> None:
    provider: Provider = RuleBasedProvider(sleep=no_sleep)
    assert (provider.name, provider.streaming, provider.default_model, provider.configured) == (
        "rulebased",
        "native",
        "script",
        True,
    )


@pytest.mark.parametrize(("delay", "words"), [(-1.0, 5), (10.0, 0)])
def test_bad_settings_are_rejected(delay: float, words: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        RuleBasedProvider(sleep=no_sleep, chunk_delay_ms=delay, words_per_chunk=words)


async def test_complete_matches_the_stream() -> None:
    provider = RuleBasedProvider(sleep=Recorder([]))
    for request in (
        script_request(),
        prompt_request("Explain TCP slow start"),
        script_request(options=Options(max_tokens=25)),
    ):
        events = await collect(provider, request)
        completion = await provider.complete(request)
        assert completion.text == joined(events)
        finish = events[-1]
        assert isinstance(finish, Finish)
        assert completion.finish_reason == finish.reason
        assert completion.usage == events[-2]


# ---- plain prompts ---------------------------------------------------------------------------


def test_prompt_answer_quotes_the_prompt() -> None:
    prompt = "How do I keep a sourdough starter alive?"
    text = draft_text(prompt_request(prompt))
    assert f'"{prompt}"' in text
    assert len(text.split()) >= 40
    assert [line[:2] for line in text.splitlines() if line[:1].isdigit()] == ["1.", "2.", "3."]


def test_long_prompt_is_truncated_in_the_quote() -> None:
    prompt = "Please explain " + "in great detail " * 30
    text = draft_text(prompt_request(prompt))
    assert f'"{prompt[:200]}…"' in text
    assert prompt.strip() not in text


def test_messages_use_the_last_user_message_and_ignore_system() -> None:
    messages = [
        ChatMessage(role="system", content="You are a pirate."),
        ChatMessage(role="user", content="What is entropy?"),
        ChatMessage(role="assistant", content="A measure of disorder."),
        ChatMessage(role="user", content="And what is enthalpy?"),
    ]
    text = draft_text(GenerationRequest(model="m", messages=messages))
    assert '"And what is enthalpy?"' in text
    assert "entropy" not in text
    assert text == draft_text(GenerationRequest(model="m", messages=messages[1:]))


def test_no_user_message_still_answers() -> None:
    text = draft_text(GenerationRequest(model="m", messages=[ChatMessage(role="system", content="hi")]))
    assert len(text.split()) >= 40


# ---- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize("max_tokens", [1, 7, 40, 150])
async def test_max_tokens_cuts_at_a_word_boundary(max_tokens: int) -> None:
    request = script_request(options=Options(max_tokens=max_tokens, temperature=0.3, top_p=0.5))
    full = draft_text(request)
    events = await collect(RuleBasedProvider(sleep=Recorder([])), request)
    text = joined(events)
    assert events[-1] == Finish("length")
    assert estimate_tokens(text) <= max_tokens
    assert full.startswith(text)
    if max_tokens > 2:  # room for at least one whole word
        assert text
        assert text[-1].isspace() or full[len(text)].isspace()
        next_word = full[len(text) :].split(maxsplit=1)[0]
        assert estimate_tokens(text + next_word) > max_tokens


async def test_max_tokens_that_fits_finishes_with_stop() -> None:
    request = prompt_request("Short?", options=Options(max_tokens=10_000))
    completion = await RuleBasedProvider(sleep=no_sleep).complete(request)
    assert (completion.text, completion.finish_reason) == (draft_text(request), "stop")


@pytest.mark.parametrize("stop", ["Narration:", ["Scene 2", "Visual:"]])
async def test_stop_strings_cut_before_the_first_match(stop: str | list[str]) -> None:
    request = script_request(options=Options(stop=stop))
    full = draft_text(request)
    first = min(full.index(s) for s in ([stop] if isinstance(stop, str) else stop))
    completion = await RuleBasedProvider(sleep=no_sleep).complete(request)
    assert completion.text == full[:first]
    assert completion.finish_reason == "stop"
    events = await collect(RuleBasedProvider(sleep=Recorder([])), request)
    assert joined(events) == full[:first]
    assert events[-1] == Finish("stop")


async def test_stop_string_that_never_occurs_changes_nothing() -> None:
    request = prompt_request("Hello", options=Options(stop=["<<never>>"]))
    completion = await RuleBasedProvider(sleep=no_sleep).complete(request)
    assert completion.text == draft_text(request)
