"""Sentence banks for the offline drafter (``providers.offline.rulebased``).

Placeholders: ``{t}`` the topic mid-sentence, ``{T}`` the topic at the start of a sentence,
``{a}`` the audience, ``{g}`` the goal. Narration banks are in story order: the drafter picks a
subset that fits its word budget and keeps this order, so the text still reads front to back.
"""

from __future__ import annotations

HOOK = "Hook"
CLOSE = "Call to action"
BODY_BEATS = [
    "Context",
    "Key idea",
    "How it works",
    "Example",
    "Why it matters",
    "Common mistake",
    "Quick tip",
]

TITLE_SUFFIXES = ["the essentials", "what you need to know", "explained simply", "a quick guide"]

VISUALS: dict[str, list[str]] = {
    HOOK: [
        "Bold title card reading “{T}” over fast-cut b-roll.",
        "Tight close-up that teases {t}, then a quick zoom out.",
        "Presenter on camera with an on-screen question: “{T}?”",
    ],
    "Context": [
        "Simple animated timeline introducing {t}.",
        "Wide establishing shot with a caption naming {t}.",
    ],
    "Key idea": [
        "Clean diagram highlighting the core idea behind {t}.",
        "One key phrase animated on a plain background.",
    ],
    "How it works": [
        "Step-by-step animated diagram of {t}.",
        "Cutaway footage walking through each step in turn.",
    ],
    "Example": [
        "Real-world footage of {t} in everyday use.",
        "Split screen showing a before and after.",
    ],
    "Why it matters": [
        "Icons for time, money and effort appearing one by one.",
        "Presenter on camera with the key benefits listed beside them.",
    ],
    "Common mistake": [
        "A red cross over the wrong approach, then a green tick over the right one.",
        "Quick blooper-style clip of the mistake, then the fix.",
    ],
    "Quick tip": [
        "Checklist graphic with the tip highlighted.",
        "Hands-on close-up of the tip being put into practice.",
    ],
    CLOSE: [
        "End card with the title, a follow prompt and a link.",
        "Presenter waves goodbye; on-screen text: “{T}: now you know.”",
    ],
}

NARRATION: dict[str, list[str]] = {
    HOOK: [
        "Ever wondered what really makes {t} tick?",
        "Most people have heard of {t}, but few could explain the idea in a sentence.",
        "This one is made for {a}.",
        "The goal is simple: {g}.",
        "Stick around, because it is simpler than it looks.",
    ],
    "Context": [
        "First, a little background on {t}.",
        "None of this appeared out of nowhere; it solves a real problem.",
        "For {a}, the best starting point is the purpose behind it all.",
        "Once the purpose is clear, the details fall into place.",
    ],
    "Key idea": [
        "Here is the one idea to remember about {t}.",
        "Strip away the jargon and the whole thing comes down to a single principle.",
        "Everything else builds on one core idea.",
        "If you remember nothing else, remember this part.",
    ],
    "How it works": [
        "So what is really going on with {t}?",
        "Think of it as a chain of simple steps, each feeding the next.",
        "None of the steps is hard on its own; the trick is the order.",
        "Put together, the pieces fit more neatly than you might expect.",
    ],
    "Example": [
        "Let's make {t} concrete with an everyday example.",
        "Picture a typical day and notice where this shows up.",
        "Seeing the idea in action makes it stick far better than a definition.",
        "Small, familiar examples are the fastest way in.",
    ],
    "Why it matters": [
        "Why should {a} care about {t}?",
        "It can save time, money or effort, and often all three.",
        "Understanding this helps you make better decisions.",
        "That is the real payoff of learning this.",
    ],
    "Common mistake": [
        "A common mistake with {t} is skipping the basics.",
        "Many people assume the whole thing is more complicated than it really is.",
        "Take it one step at a time and the confusion fades.",
    ],
    "Quick tip": [
        "Here is a quick tip for getting started with {t}.",
        "Start small, check your results, and build from there.",
        "A little practice goes a long way.",
    ],
    CLOSE: [
        "That wraps up {t} in a nutshell.",
        "Remember the goal: {g}.",
        "If this helped, share it with someone who is curious about {t}.",
        "Try one idea from this video today.",
        "Follow for more short explainers like this one.",
    ],
}

# Topic-free sentences that read well anywhere in a scene; used when a beat's bank runs short.
GENERAL = [
    "It is easier to grasp than it first appears.",
    "Small details like this make a big difference.",
    "Plenty of people find this part surprisingly useful.",
    "It is worth pausing on for a moment.",
    "A clear picture here makes everything else easier.",
    "This is where the pieces start to connect.",
]

# Exact-length pads (key = word count) that close the last few words of a scene's budget.
FILLERS: dict[int, list[str]] = {
    1: ["Simple.", "Exactly."],
    2: ["Worth remembering.", "Pretty neat.", "Keep going."],
    3: ["Think about it.", "That matters here.", "Stay with me."],
    4: ["That is the point.", "Keep this in mind.", "It adds up quickly."],
}

# Tone is free text: a keyword picks the family, "friendly" is the default.
TONE_KEYWORDS: dict[str, set[str]] = {
    "formal": {"formal", "professional", "serious", "academic", "authoritative", "neutral", "corporate"},
    "playful": {"playful", "fun", "funny", "humorous", "witty", "light", "lighthearted", "quirky"},
    "energetic": {"energetic", "excited", "exciting", "urgent", "bold", "hype", "enthusiastic", "upbeat"},
}
TONE_OPENERS: dict[str, list[str]] = {
    "friendly": ["Hey there!", "Hi, friends!"],
    "formal": ["Welcome.", "Good day."],
    "playful": ["Okay, buckle up!", "Fun fact time!"],
    "energetic": ["Listen up!", "Let's go!"],
}
TONE_CLOSERS: dict[str, list[str]] = {
    "friendly": ["See you next time!", "Thanks for watching!"],
    "formal": ["Thank you for your attention.", "Thank you for watching."],
    "playful": ["Stay curious, and have fun with it!", "Now go impress your friends!"],
    "energetic": ["Don't wait; start today!", "Now go make it happen!"],
}

# ---- answers to plain prompts ----------------------------------------------------------------

INTROS = [
    "This reply comes from the offline, rule-based drafter, so treat it as a starting framework "
    "rather than a researched answer.",
    "No language model was consulted here; what follows is a general way to work through the question.",
    "The rule-based drafter has no live model behind it, but it can still lay out a sensible approach.",
]
POINTS = [
    "Clarify the question: decide what a good answer must cover and which terms need a definition.",
    "Gather the facts: note what you already know, what is uncertain, and where reliable sources can "
    "fill the gaps.",
    "Break it into parts: tackle each sub-question on its own, then see how the pieces connect.",
    "Find an example: a concrete case usually reveals more than an abstract description.",
    "Weigh the trade-offs: list the main options with their costs and benefits.",
    "Check the result: test your conclusion against a simple case or a second opinion.",
]
CLOSINGS = [
    "For a detailed, up-to-date answer, send the same request to a live provider.",
    "Switch to a live provider when you need specifics beyond this outline.",
    "Hope this gives you a useful place to start.",
]
