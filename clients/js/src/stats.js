/**
 * Live statistics of one stream, as the client sees it.
 * @module
 */

/** @typedef {import('../index.js').StreamStats} StreamStats */
/** @typedef {import('../index.js').Usage} Usage */
/** @typedef {import('../index.js').StreamPart} StreamPart */

/** Milliseconds from a monotonic clock when there is one. */
export const now = () => (globalThis.performance ? globalThis.performance.now() : Date.now());

/**
 * Characters of a string as the gateway counts them (Unicode code points, not UTF-16 units).
 * @param {string} text
 */
export function countChars(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xdc00 || unit > 0xdfff) n++; // a low surrogate belongs to the character before it
  }
  return n;
}

/**
 * The gateway's token estimate: about 4 characters per token, rounded up.
 * @param {number} chars
 */
export const estimateTokens = (chars) => Math.ceil(chars / 4);

/**
 * Accumulates what `stream.stats` reports. Times are taken from `clock` (milliseconds).
 */
export class StatsTracker {
  /**
   * @param {number} startedAt when `stream()` was called
   * @param {() => number} [clock]
   */
  constructor(startedAt, clock = now) {
    this.clock = clock;
    this.startedAt = startedAt;
    /** @type {number | null} */
    this.firstChunkAt = null;
    /** @type {number | null} */
    this.endedAt = null;
    this.chunks = 0;
    this.chars = 0;
    /** @type {number | null} tokens reported by the gateway at `done` */
    this.finalTokens = null;
  }

  /**
   * A part of the stream: text counts as a chunk; the first part of any kind (reasoning, a tool
   * call) is the first token, as the gateway counts it, and its characters count in the estimate.
   * @param {StreamPart} part
   */
  part(part) {
    if (this.firstChunkAt === null) this.firstChunkAt = this.clock();
    if (part.type === 'text') this.chunks += 1;
    if (part.type === 'text' || part.type === 'reasoning') this.chars += countChars(part.text);
    else if (part.type === 'tool-call-delta') this.chars += countChars(part.argumentsDelta);
  }

  /** @param {Usage | null | undefined} usage */
  end(usage) {
    if (this.endedAt !== null) return;
    this.endedAt = this.clock();
    if (usage && typeof usage.completion_tokens === 'number') this.finalTokens = usage.completion_tokens;
  }

  /** @returns {StreamStats} */
  snapshot() {
    const at = this.endedAt ?? this.clock();
    const tokens = this.finalTokens ?? estimateTokens(this.chars);
    const generatingMs = this.firstChunkAt === null ? 0 : at - this.firstChunkAt;
    return {
      chunks: this.chunks,
      tokens,
      tokensPerSecond: generatingMs > 0 ? (tokens * 1000) / generatingMs : null,
      ttftMs: this.firstChunkAt === null ? null : this.firstChunkAt - this.startedAt,
      elapsedMs: at - this.startedAt,
    };
  }
}

/**
 * Formats stats for a status line, e.g. `120 tokens · 85.3 tok/s · TTFT 212 ms`.
 * @param {StreamStats} stats
 * @returns {string}
 */
export function formatStats(stats) {
  const tps = stats.tokensPerSecond === null ? '–' : stats.tokensPerSecond.toFixed(1);
  const ttft = stats.ttftMs === null ? '–' : Math.round(stats.ttftMs).toString();
  return `${stats.tokens} tokens · ${tps} tok/s · TTFT ${ttft} ms`;
}
