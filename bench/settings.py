"""How long and how hard each scenario runs: the full run and the ``--quick`` smoke run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    ttft_samples: int  # per transport, OpenAI format
    ttft_samples_anthropic: int
    ttft_rounds: int
    gap_streams: int  # concurrent, started 5 ms apart
    gap_chunks: int
    gap_rounds: int
    stall_steps: tuple[int, ...]
    stall_rate: float  # streams started per second: N streams start over N / rate seconds
    stall_steady: float  # seconds every stream of a step runs at once (streams last ramp + steady)
    thr_streams: int
    thr_chunks: int
    thr_rounds: int
    mem_connections: int
    soak_seconds: float
    warmup: int
    settle: float  # seconds to let the gateway settle before an RSS reading
    resume_samples: int  # resumes measured per store (memory; Redis across instances)
    resume_rounds: int  # the samples come in this many rounds, the stores' order rotating
    resume_workers: int  # samples in flight at once, each with its own stream and sockets
    resume_warmup: int  # resumes per store before measuring
    resume_thr_rounds: int  # relay throughput, memory store vs Redis store (thr_streams x thr_chunks)
    # tool_call and reasoning: time to first part as ttft's (warm-up included), throughput as throughput's
    parts_samples: int  # per transport, OpenAI format
    parts_samples_anthropic: int
    parts_rounds: int
    # ai_sdk: POST /v1/ui/chat against the AI SDK's Node route (throughput as throughput's)
    ai_sdk_samples: int  # time to first part, per target
    ai_sdk_rounds: int
    ai_sdk_steps: tuple[int, ...]  # stall-free chats: stream counts tried (stall's rate and steady time)
    ai_sdk_thr_chunks: int  # relay throughput: thr_streams streams of this many chunks, thr_rounds rounds
    stall_layouts: tuple[str, ...] = ("direct", "ws-1", "ws-8", "sse")


FULL = Settings(
    ttft_samples=600,
    ttft_samples_anthropic=200,
    ttft_rounds=10,
    gap_streams=4,
    gap_chunks=100,
    gap_rounds=4,
    stall_steps=(64, 128, 256, 384, 512, 768, 1024),
    stall_rate=250,
    stall_steady=2.0,
    thr_streams=4,
    thr_chunks=25000,
    thr_rounds=3,
    mem_connections=500,
    soak_seconds=60,
    warmup=30,
    settle=1.0,
    resume_samples=200,
    resume_rounds=5,
    resume_workers=2,
    resume_warmup=4,
    resume_thr_rounds=3,
    parts_samples=300,
    parts_samples_anthropic=100,
    parts_rounds=6,
    ai_sdk_samples=200,
    ai_sdk_rounds=4,
    ai_sdk_steps=(8, 16, 32, 64, 128, 256, 384, 512, 768, 1024),
    ai_sdk_thr_chunks=5000,  # the Node route relays a few thousand a second: 25000 would take minutes
)
QUICK = Settings(
    ttft_samples=60,
    ttft_samples_anthropic=20,
    ttft_rounds=3,
    gap_streams=4,
    gap_chunks=25,
    gap_rounds=1,
    stall_steps=(16, 64),
    stall_rate=500,
    stall_steady=0.3,
    thr_streams=2,
    thr_chunks=1000,
    thr_rounds=1,
    mem_connections=50,
    soak_seconds=4,
    warmup=5,
    settle=0.3,
    resume_samples=20,
    resume_rounds=2,
    resume_workers=2,
    resume_warmup=2,
    resume_thr_rounds=3,
    parts_samples=30,
    parts_samples_anthropic=10,
    parts_rounds=2,
    ai_sdk_samples=30,
    ai_sdk_rounds=2,
    ai_sdk_steps=(8, 32),
    ai_sdk_thr_chunks=1000,
)
