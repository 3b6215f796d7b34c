// Type definitions for @tokenwire/client (protocol v1). Hand-written; kept in step with src/ by
// `npm run typecheck` (tsconfig checks src/*.js against these declarations).

// ---- protocol: client → server ---------------------------------------------------------------

export type Role = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string;
}

/** What a video script is about (script drafting). */
export interface Brief {
  /** 1–500 characters. */
  topic: string;
  audience?: string;
  goal?: string;
  tone?: string;
  language?: string;
}

/** How long and dense a script is; only together with `brief`. */
export interface Plan {
  /** 5 to 3600; default 60. */
  target_duration_seconds?: number;
  pacing?: 'slow' | 'conversational' | 'fast';
  density?: 'sparse' | 'low' | 'balanced' | 'medium' | 'dense' | 'high';
  style?: string;
}

/** Generation options; `null` is the same as absent. */
export interface GenerationOptions {
  /** 0 to 2. */
  temperature?: number | null;
  /** 1 to 1,000,000. */
  max_tokens?: number | null;
  /** 0 to 1. */
  top_p?: number | null;
  /** A string of at most 256 characters, or at most 16 strings. */
  stop?: string | string[] | null;
  /** A failure for the `rulebased` provider to act out (to rehearse error handling); other providers ignore it. */
  fault?: Fault | null;
}

/**
 * Failures the `rulebased` provider acts out. A count N means "after N chunks" (0: before the
 * first); at most one of the three `*_after_chunks` may be set. Unknown fields are refused.
 */
export interface Fault {
  /** Wait this long before the first chunk (0 to 600,000). */
  first_token_delay_ms?: number | null;
  /** Send nothing more after N chunks, until cancelled or a gateway timeout fires. */
  stall_after_chunks?: number | null;
  /** Fail with `error_code` after N chunks (0: before the first, which the gateway retries). */
  error_after_chunks?: number | null;
  /** With `error_after_chunks`; default `upstream_unavailable`. */
  error_code?:
    | 'upstream_unavailable'
    | 'upstream_rate_limited'
    | 'upstream_auth'
    | 'upstream_bad_request'
    | 'upstream_protocol'
    | 'timeout'
    | null;
  /** With `error_after_chunks`: the error's `retry_after_s`. */
  retry_after_s?: number | null;
  /** End the upstream stream after N chunks without its end signal (`upstream_protocol`). */
  truncate_after_chunks?: number | null;
}

interface RequestFields {
  /** `^[A-Za-z0-9._:-]{1,64}$`. Generated when absent (`s1`, `s2`, … over WebSocket). */
  id?: string;
  provider?: string;
  model?: string;
  /** A server-side preset (`[agents.<id>]`), e.g. `"assistant"`. */
  agent?: string;
  options?: GenerationOptions;
}

/** The protocol's `start` fields without `type`: exactly one of `messages`, `prompt`, `brief`. */
export type StreamRequest =
  | (RequestFields & { messages: ChatMessage[]; prompt?: undefined; brief?: undefined; plan?: undefined })
  | (RequestFields & { prompt: string; messages?: undefined; brief?: undefined; plan?: undefined })
  | (RequestFields & { brief: Brief; plan?: Plan; messages?: undefined; prompt?: undefined });

// ---- protocol: server → client ---------------------------------------------------------------

export interface ProviderInfo {
  name: string;
  streaming: 'native' | 'simulated';
  /** `false`: the provider lacks credentials and refuses with `provider_not_configured`. */
  configured: boolean;
  default_model: string;
}

export interface Limits {
  /** Streams one connection may run at once. */
  max_streams: number;
  /** The largest client message accepted, in bytes. */
  max_message_bytes: number;
}

export interface Ready {
  type: 'ready';
  protocol: number;
  server: { name: string; version: string };
  providers: ProviderInfo[];
  limits: Limits;
  /**
   * Set by the client over SSE, where the gateway sends no `ready`: `providers` is then empty,
   * `server.version` is `"unknown"` and both limits are `Infinity`.
   */
  synthetic?: true;
}

/** The ack of an accepted stream. */
export interface StartAck {
  type: 'start';
  id: string;
  seq: 0;
  provider: string;
  model: string;
  /**
   * The stream's unguessable key (32 URL-safe characters): resuming (`resume`,
   * `GET /v1/streams/{key}`) and cancelling from anywhere (`DELETE /v1/streams/{key}`) take it.
   * Absent only from gateways older than resumable streams.
   */
  key?: string;
}

export interface ChunkMessage {
  type: 'chunk';
  id: string;
  seq: number;
  content: string;
  /** Only on a merged chunk: the first seq it covers. */
  from_seq?: number;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  estimated: boolean;
}

export interface Metrics {
  provider: string;
  model: string;
  ttft_ms: number | null;
  duration_ms: number;
  tokens_per_second: number | null;
  estimated_cost_usd: number | null;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'cancelled' | (string & {});

/** The terminal message of a stream that ended normally (also when cancelled). */
export interface Done {
  type: 'done';
  id: string;
  seq: number;
  finish_reason: FinishReason;
  /** The whole text (for a cancelled stream: the text so far). */
  content: string;
  /**
   * Always set by the gateway. `null` only in a `done` the client made itself: a stream cancelled
   * before it was sent, whose signal was already aborted, or whose connection ended after
   * `cancel()`.
   */
  usage: Usage | null;
  /** Like `usage`. */
  metrics: Metrics | null;
}

/** The protocol's error codes. */
export type ErrorCode =
  | 'bad_message'
  | 'unknown_provider'
  | 'provider_not_configured'
  | 'unknown_agent'
  | 'duplicate_stream'
  | 'unknown_stream'
  | 'too_many_streams'
  | 'server_busy'
  | 'upstream_auth'
  | 'upstream_rate_limited'
  | 'upstream_bad_request'
  | 'upstream_unavailable'
  | 'upstream_protocol'
  | 'timeout'
  | 'unauthorized'
  | 'rate_limited'
  | 'shutting_down'
  /** A resume of a key the gateway no longer knows (unknown, restarted, or past its retention). */
  | 'stream_expired'
  /** Terminal: the gateway instance running a resumed stream died. */
  | 'stream_lost'
  | 'internal';

/** Codes the client itself produces. */
export type ClientErrorCode = 'connection_lost' | 'closed' | 'protocol_gap';

export interface ErrorMessage {
  type: 'error';
  /** Absent for a connection-level error. */
  id?: string;
  /** Present only when the error ends an accepted stream. */
  seq?: number;
  code: ErrorCode | (string & {});
  message: string;
  retryable: boolean;
  retry_after_s?: number;
  provider?: string;
  /** The upstream's HTTP status. */
  status?: number;
}

/** What a `notice` reports: a retry of the same provider, or a switch to a fallback. */
export type NoticeCode = 'retrying' | 'failover';

/**
 * The gateway retries or fails over before the first token. Sent between the ack and the first
 * chunk, never terminal, and without `seq`: it is not one of the stream's numbered events.
 */
export interface Notice {
  type: 'notice';
  id: string;
  code: NoticeCode | (string & {});
  /** Human-readable, e.g. `"openai failed before the first token (upstream_unavailable); retrying in 0.25 s"`. */
  message: string;
  /** The provider of the try about to start (after a failover: the fallback now serving). */
  provider: string;
  /** The model of the try about to start. */
  model: string;
  /** The try about to start: 2 is the first retry. */
  attempt: number;
  /** The error code of the failure that caused it, e.g. `"upstream_unavailable"`. */
  reason: ErrorCode | (string & {});
  /** Seconds the gateway waits before that try; absent for a failover. */
  delay_s?: number;
}

export interface Pong {
  type: 'pong';
  ts: number | string;
}

export type ServerMessage = Ready | StartAck | Notice | ChunkMessage | Done | ErrorMessage | Pong;

// ---- errors ------------------------------------------------------------------------------------

export interface TokenwireErrorInit {
  retryable?: boolean;
  retryAfter?: number | null;
  status?: number | null;
  provider?: string | null;
  streamId?: string | null;
  cause?: unknown;
}

/** Every failure: refusals, terminal stream errors, HTTP errors and client-side problems. */
export declare class TokenwireError extends Error {
  constructor(code: string, message: string, init?: TokenwireErrorInit);
  /** A protocol error code, a client code (`connection_lost`, `closed`, `protocol_gap`), or `http_<status>` for a non-JSON HTTP error. */
  code: ErrorCode | ClientErrorCode | (string & {});
  /** Whether the same request may succeed later. */
  retryable: boolean;
  /** Seconds to wait before retrying, when the gateway said (`retry_after_s`). */
  retryAfter: number | null;
  /** The upstream's HTTP status (WebSocket, SSE error events), or the HTTP status of the gateway's answer (SSE transport, before the stream started). */
  status: number | null;
  provider: string | null;
  streamId: string | null;
  /**
   * What caused it, when known: for `connection_lost` after a failed resume, the gateway's
   * refusal (a `TokenwireError` with code `stream_expired`, say) or the network error.
   */
  cause?: unknown;
}

// ---- streams -----------------------------------------------------------------------------------

/** One chunk of text. A merged chunk covers `fromSeq`..`seq`. */
export interface StreamChunk {
  content: string;
  seq: number;
  fromSeq?: number;
}

export interface StreamStats {
  /** Chunk objects received (a merged chunk counts once). */
  chunks: number;
  /** ceil(characters / 4) while streaming; `usage.completion_tokens` after `done`. */
  tokens: number;
  /** `tokens` per second since the first chunk (until the end); null before there is any time. */
  tokensPerSecond: number | null;
  /** Milliseconds from the `stream()` call to the first chunk; null before it. */
  ttftMs: number | null;
  /** Milliseconds since the `stream()` call (frozen when the stream ends). */
  elapsedMs: number;
}

export type StreamStatus = 'queued' | 'streaming' | 'done' | 'cancelled' | 'error';

export interface StreamHandlers {
  /** Aborting sends `cancel`; `result` resolves with `finish_reason: "cancelled"`. */
  signal?: AbortSignal;
  onStart?(ack: StartAck, stream: TokenwireStream): void;
  /** The gateway retries or fails over before the first token; `stream.provider`/`model` are already updated. */
  onNotice?(notice: Notice, stream: TokenwireStream): void;
  onChunk?(chunk: StreamChunk, stream: TokenwireStream): void;
  onDone?(done: Done, stream: TokenwireStream): void;
  onError?(error: TokenwireError, stream: TokenwireStream): void;
}

export declare class TokenwireStream implements AsyncIterable<StreamChunk> {
  /** Streams are created by `client.stream()`. */
  private constructor();
  /** The stream id (generated unless the request named one). */
  readonly id: string;
  /**
   * The gateway's key for the stream, from its ack (null before it): the client resumes the
   * stream with it after a dropped connection; `DELETE /v1/streams/{key}` cancels it from
   * anywhere. Keep it private.
   */
  readonly key: string | null;
  /** From the ack, then from each notice (after a failover: the fallback) and `done.metrics`; null before the ack. */
  readonly provider: string | null;
  /** Like `provider`: from the ack, each notice and `done.metrics`; null before the ack. */
  readonly model: string | null;
  /** The gateway's notices for this stream so far, in order (a fresh array on every read). */
  readonly notices: Notice[];
  /** All text so far; at `done`, the gateway's `content`. */
  readonly text: string;
  /** `'queued'` until the gateway's ack, `'streaming'` until the end. */
  readonly status: StreamStatus;
  /**
   * True while the client holds the stream back, nothing sent yet: it waits for the connection,
   * or for one of the socket's `limits.max_streams` streams to end. False once its `start` is
   * sent (then `status` stays `'queued'` until the ack), and once it ended.
   */
  readonly queued: boolean;
  /** The error that ended the stream, or null. */
  readonly error: TokenwireError | null;
  /** A fresh snapshot on every read. */
  readonly stats: StreamStats;
  /** The terminal `done` (also when cancelled); rejects with a TokenwireError. */
  readonly result: Promise<Done>;
  /**
   * Sends `cancel` (by key once reconnected, while the connection is down; SSE: `DELETE
   * /v1/streams/{key}`); `result` resolves with `finish_reason: "cancelled"` and the text so far.
   */
  cancel(): void;
  /** Chunks from the first; ends after `done`, throws the TokenwireError on failure. */
  [Symbol.asyncIterator](): AsyncIterableIterator<StreamChunk>;
}

// ---- the client --------------------------------------------------------------------------------

export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';
export type TransportName = 'websocket' | 'sse';

export interface ReconnectOptions {
  /** Default 250. */
  initialDelayMs?: number;
  /** Default 10000. */
  maxDelayMs?: number;
  /** Default 2. */
  factor?: number;
  /** Fraction of each delay that is random, 0 to 1 (1 = full jitter). Default 0.5. */
  jitter?: number;
  /** Consecutive failed attempts before giving up. Default Infinity. */
  maxAttempts?: number;
}

/** A WebSocket constructor: the browser's, Node 22's, or `WebSocket` from the `ws` package. */
export type WebSocketConstructor = new (url: string) => object;

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** Sent as `?token=` on the WebSocket and `Authorization: Bearer` over HTTP. */
  token?: string;
  /** Default `'auto'`: WebSocket; SSE from then on if WebSockets cannot open while the gateway answers HTTP. */
  transport?: 'auto' | 'websocket' | 'sse';
  /**
   * Default on. Reconnecting (WebSocket) and resuming broken streams (both transports; over SSE
   * at most 5 attempts in a row, with these delays). `false` turns both off.
   */
  reconnect?: boolean | ReconnectOptions;
  /** Default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Default `globalThis.fetch`. */
  fetch?: FetchLike;
}

export interface ClientEvents {
  state: (state: ClientState) => void;
  ready: (ready: Ready) => void;
  reconnect: (attempt: number, delayMs: number) => void;
  /** Connection-level errors: an `error` without a stream to route to, a 1008 close. */
  error: (error: TokenwireError) => void;
}

export declare class TokenwireClient {
  /**
   * @param url the gateway base: `http(s)://host:port` or `ws(s)://host:port`; a trailing `/v1/ws` is accepted.
   */
  constructor(url: string | URL, options?: ClientOptions);
  /** The current connection's `ready` (a new promise after each reconnect). */
  readonly ready: Promise<Ready>;
  /** The last `ready`'s providers. */
  readonly providers: ProviderInfo[];
  readonly state: ClientState;
  /** Reconnect attempts scheduled so far (one per `'reconnect'` event). */
  readonly reconnects: number;
  /** The transport in use; null while `'auto'` has not decided yet. */
  readonly transport: TransportName | null;
  /** Returns a function that removes the listener. */
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void;
  /** Opens the connection now (it otherwise opens on the first stream). */
  connect(): Promise<Ready>;
  stream(request: StreamRequest, handlers?: StreamHandlers): TokenwireStream;
  /** Ends everything; streams that have not ended fail with code `closed`. */
  close(): void;
}

// ---- utilities ---------------------------------------------------------------------------------

/** The HTTP base and the WebSocket URL for a gateway URL. */
export declare function gatewayEndpoints(url: string | URL, token?: string): { httpBase: string; wsUrl: string };

export declare const STREAM_ID_PATTERN: RegExp;

export interface SseEvent {
  /** The `event:` field, `"message"` when absent. */
  type: string;
  data: string;
  /** The last event id seen. */
  id: string;
}

/** The spec-compliant Server-Sent Events parser the SSE transport uses. */
export declare class SseParser {
  lastEventId: string;
  retry: number | null;
  push(chunk: Uint8Array | string): SseEvent[];
  end(): SseEvent[];
}

export declare const DEFAULT_RECONNECT: Readonly<Required<ReconnectOptions>>;

/** The wait before reconnect attempt `attempt` (1, 2, …), in milliseconds. */
export declare function backoffDelay(attempt: number, policy: Required<ReconnectOptions>, random?: () => number): number;

/** Characters as the gateway counts them (code points). */
export declare function countChars(text: string): number;

/** The gateway's estimate: ceil(chars / 4). */
export declare function estimateTokens(chars: number): number;

/** `"120 tokens · 85.3 tok/s · TTFT 212 ms"`. */
export declare function formatStats(stats: StreamStats): string;
