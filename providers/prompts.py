"""Chat messages for live models, and the script-sizing rules shared with the offline drafter.

The words-per-minute and seconds-per-scene tables live here and ``providers.offline.rulebased`` imports
them, so a live model is asked for exactly the shape the offline drafter produces.
"""

from __future__ import annotations

from protocol.messages import Brief, ChatMessage, Density, Pacing, Plan

WORDS_PER_MINUTE: dict[Pacing, int] = {"slow": 120, "conversational": 150, "fast": 180}
SECONDS_PER_SCENE: dict[Density, float] = {
    "sparse": 20,
    "low": 20,
    "balanced": 12,
    "medium": 12,
    "dense": 8,
    "high": 8,
}
MIN_SCENES = 2
SPAN_DASH = "\u2013"  # en dash between scene start and end; escaped because ruff flags the literal


def words_per_minute(pacing: Pacing) -> int:
    # .get: a Plan built in code (not decoded) is not validated against the Literal.
    return WORDS_PER_MINUTE.get(pacing, WORDS_PER_MINUTE["conversational"])


def seconds_per_scene(density: Density) -> float:
    return SECONDS_PER_SCENE.get(density, SECONDS_PER_SCENE["balanced"])


def scene_count(plan: Plan) -> int:
    return max(MIN_SCENES, round(plan.target_duration_seconds / seconds_per_scene(plan.density)))


def target_words(plan: Plan) -> int:
    """Narration words for the whole script: duration at the pacing's speaking rate."""
    return round(plan.target_duration_seconds * words_per_minute(plan.pacing) / 60)


def clock(seconds: float) -> str:
    """``m:ss``, rounded to the second."""
    total = round(seconds)
    return f"{total // 60}:{total % 60:02d}"


def one_line(text: str) -> str:
    """Collapse whitespace so a brief field cannot break the line-based script format."""
    return " ".join(text.split())


def header_line(brief: Brief, plan: Plan) -> str:
    return (
        f"Audience: {one_line(brief.audience)} | Goal: {one_line(brief.goal)} | "
        f"Tone: {one_line(brief.tone)} | Style: {one_line(plan.style)} | "
        f"Pacing: {plan.pacing} ({words_per_minute(plan.pacing)} wpm) | "
        f"Duration: {clock(plan.target_duration_seconds)}"
    )


_SYSTEM = f"""\
You draft short video scripts. Reply with the script only, as plain text in exactly this format:

Title: <a short title>
<the header line, copied exactly as given>

Scene 1 — Hook (0:00{SPAN_DASH}0:12)
Visual: <what is on screen, one line>
Narration: <what the narrator says, one line>

Scene 2 — <beat name> (0:12{SPAN_DASH}0:24)
...

Scene 1 is the hook, the last scene is a call to action, the scenes between are body beats. \
Time ranges are contiguous, start at 0:00 and end at the target duration. \
Hit the narration word count: only the words after "Narration:" count."""


def script_messages(brief: Brief, plan: Plan) -> list[ChatMessage]:
    scenes, words = scene_count(plan), target_words(plan)
    user = "\n".join(
        [
            f"Write a video script about: {one_line(brief.topic)}",
            f"Style: {one_line(plan.style)}",
            f"Audience: {one_line(brief.audience)}",
            f"Goal: {one_line(brief.goal)}",
            f"Tone: {one_line(brief.tone)}",
            f"Language: {brief.language} (keep the labels Title, Scene, Visual and Narration in English)",
            f"Header line: {header_line(brief, plan)}",
            f"Length: {clock(plan.target_duration_seconds)} at {words_per_minute(plan.pacing)} words "
            f"per minute, so {words} narration words in total.",
            f"Scenes: {scenes} ({plan.density} density), about {round(words / scenes)} narration words each.",
        ]
    )
    return [ChatMessage(role="system", content=_SYSTEM), ChatMessage(role="user", content=user)]


def prompt_messages(prompt: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=prompt)]
