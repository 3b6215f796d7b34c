// Not a test file: `npm run typecheck` checks that the implementation in src/ matches the
// hand-written declarations in index.d.ts. Nothing here runs.
import * as impl from '../src/index.js';

/** @typedef {typeof import('../index.js')} Declared */

/** @type {Declared['TokenwireClient']} */
export const client = impl.TokenwireClient;
/** @type {Declared['TokenwireError']} */
export const error = impl.TokenwireError;
/** @type {Declared['SseParser']} */
export const parser = impl.SseParser;
/** @type {Declared['gatewayEndpoints']} */
export const endpoints = impl.gatewayEndpoints;
/** @type {Declared['backoffDelay']} */
export const backoff = impl.backoffDelay;
/** @type {Declared['DEFAULT_RECONNECT']} */
export const reconnect = impl.DEFAULT_RECONNECT;
/** @type {Declared['countChars']} */
export const chars = impl.countChars;
/** @type {Declared['estimateTokens']} */
export const tokens = impl.estimateTokens;
/** @type {Declared['formatStats']} */
export const format = impl.formatStats;
/** @type {Declared['STREAM_ID_PATTERN']} */
export const pattern = impl.STREAM_ID_PATTERN;

/** @type {Declared['parsePartialJson']} */
export const partialJson = impl.parsePartialJson;
/** @type {Declared['imagePart']} */
export const image = impl.imagePart;
/** @type {Declared['MAX_IMAGE_BYTES']} */
export const maxImage = impl.MAX_IMAGE_BYTES;
/** @type {Declared['IMAGE_TYPES']} */
export const imageTypes = impl.IMAGE_TYPES;
/** @type {Declared['DEFAULT_MAX_STEPS']} */
export const maxSteps = impl.DEFAULT_MAX_STEPS;

/**
 * @param {impl.ToolLoopStream} loop
 * @returns {import('../index.js').ToolLoopStream}
 */
export const toolLoop = (loop) => loop;

/**
 * The stream class has a private constructor in the declarations; compare instances.
 * @param {impl.TokenwireStream} stream
 * @returns {import('../index.js').TokenwireStream}
 */
export const stream = (stream) => stream;

/** The platform's WebSocket and fetch fit the options. */
export const platform = () =>
  new impl.TokenwireClient(new URL('http://127.0.0.1:8000'), {
    WebSocket: globalThis.WebSocket,
    fetch: globalThis.fetch,
    transport: 'auto',
    reconnect: { initialDelayMs: 100, jitter: 1 },
    token: 't',
  });

/**
 * And the public surface the declarations promise, used the way an application would.
 * @param {import('../index.js').TokenwireClient} c
 */
export async function usage(c) {
  const controller = new AbortController();
  const s = c.stream(
    { prompt: 'hi', options: { max_tokens: 10 } },
    {
      signal: controller.signal,
      onStart: (ack) => ack.provider,
      onNotice: (notice, st) => `${notice.code} ${notice.attempt} ${notice.delay_s ?? 0} ${st.provider}`,
      onChunk: (chunk, st) => chunk.content + st.text,
      onDone: (done) => done.usage?.completion_tokens,
      onError: (e) => e.retryAfter,
    },
  );
  c.stream({ brief: { topic: 'Tides' }, plan: { pacing: 'fast' } });
  c.stream({ prompt: 'hi', options: { fault: { error_after_chunks: 0, error_code: 'upstream_unavailable' } } });
  c.stream({ messages: [{ role: 'user', content: 'hi' }], agent: 'assistant' });
  for await (const chunk of s) chunk.fromSeq?.toFixed();
  const done = await s.result;
  const off = c.on('reconnect', (attempt, delayMs) => attempt + delayMs);
  off();
  const ready = await c.connect();
  /** @type {import('../index.js').ErrorCode[]} */
  const drain = ['shutting_down', 'rate_limited', 'stream_expired', 'stream_lost'];
  const reasons = s.notices.map((n) => n.reason);
  /** @type {string | null} */
  const key = s.key;
  const resumable = (/** @type {import('../index.js').TokenwireError} */ e) => e.cause instanceof impl.TokenwireError && e.cause.code === 'stream_expired';
  /** @type {boolean} */
  const held = s.queued;
  return [done.finish_reason, s.stats.tokensPerSecond, ready.limits.max_streams, held, c.providers[0]?.name, drain, reasons, key, resumable];
}

/**
 * Protocol v1.1: parts, JSON output, images, and a tool loop.
 * @param {import('../index.js').TokenwireClient} c
 * @param {Blob} file
 */
export async function partsUsage(c, file) {
  const s = c.stream(
    {
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, await impl.imagePart(file)] }],
      tools: [{ name: 'get_weather', parameters: { type: 'object' } }],
      tool_choice: { name: 'get_weather' },
      reasoning: { effort: 'low' },
      response_format: { type: 'json_schema', schema: { type: 'object' } },
    },
    {
      onReasoning: (part) => part.text,
      onToolCall: (part) => (part.type === 'tool-call-delta' ? part.argumentsDelta : part.callId),
      onPart: (part) => part.seq,
      onPartialObject: (value, st) => [value, st.partialObject],
    },
  );
  for await (const part of s.parts()) if (part.type === 'tool-call-end') part.argumentsError?.length;
  for await (const value of s.partialObjects()) JSON.stringify(value);
  const done = await s.result;
  const calls = done.tool_calls?.map((call) => call.arguments_error ?? call.name);
  const loop = c.stream(
    {
      prompt: 'What is 6*7?',
      maxSteps: 3,
      tools: {
        calculator: {
          description: 'Evaluates an expression',
          parameters: { type: 'object', properties: { expression: { type: 'string' } } },
          execute: (/** @type {{expression: string}} */ args, context) => `${args.expression} @ ${context.step} ${context.signal.aborted}`,
        },
      },
    },
    {
      onStepStart: (part) => part.id,
      onStepEnd: (part) => part.done.finish_reason,
      onToolResult: (part, l) => [part.error ?? part.content, l.steps.length],
      onPart: (part) => part.step,
    },
  );
  for await (const part of loop.parts()) if (part.type === 'tool-result') part.output;
  const finished = await loop.result;
  const history = [...finished.messages, { role: /** @type {const} */ ('user'), content: 'thanks' }];
  return [s.reasoning, s.toolCalls[0]?.argumentsText, calls, finished.totalUsage?.reasoning_tokens, finished.steps.length, history, impl.parsePartialJson('{').state];
}
