// Type definitions for @tokenwire/client (protocol v1.1). Hand-written; kept in step with src/ by
// `npm run typecheck` (tsconfig checks src/*.js against these declarations).

// ---- protocol: client → server ---------------------------------------------------------------

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface TextContent {
  type: 'text';
  text: string;
}

/** An `https:` URL, or a `data:` URL of base64 PNG, JPEG, GIF or WebP bytes (at most 5 MiB); see `imagePart()`. */
export interface ImageContent {
  type: 'image';
  url: string;
}

export type ContentPart = TextContent | ImageContent;

/** A call the model made, as in `done.tool_calls`; passed back verbatim on the assistant message. */
export interface ToolCall {
  call_id: string;
  name: string;
  /** The parsed JSON arguments; `null` with `arguments_error` when the model produced invalid JSON. */
  arguments: unknown;
  arguments_error?: string;
}

export interface ChatMessage {
  role: Role;
  /** Text, or text and image parts. May be absent on an `assistant` message that carries `tool_calls`. */
  content?: string | ContentPart[] | null;
  /** `assistant`: the calls of that turn, exactly `done.tool_calls`. */
  tool_calls?: ToolCall[];
  /** `assistant`: the opaque `done.provider_state` of that turn, unchanged. */
  provider_state?: string;
  /** `tool`: the call this message answers. */
  tool_call_id?: string;
}

/** A JSON Schema object. */
export type JsonSchema = Record<string, unknown>;

/** A function the model may call (the gateway never runs it). */
export interface ToolDeclaration {
  /** `^[A-Za-z0-9_-]{1,64}$`, unique. */
  name: string;
  description?: string;
  /** The arguments' JSON Schema (default: no arguments). */
  parameters?: JsonSchema;
}

export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json' }
  | { type: 'json_schema'; name?: string; schema: JsonSchema; strict?: boolean };

/** Thinking, where the model supports it; with it, the reasoning text is streamed. */
export interface ReasoningOptions {
  effort?: 'low' | 'medium' | 'high';
  budget_tokens?: number;
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

interface CommonFields {
  /** `^[A-Za-z0-9._:-]{1,64}$`. Generated when absent (`s1`, `s2`, … over WebSocket). */
  id?: string;
  provider?: string;
  model?: string;
  /** A server-side preset (`[agents.<id>]`), e.g. `"assistant"`. */
  agent?: string;
  options?: GenerationOptions;
  /** Default `"auto"` with tools. */
  tool_choice?: ToolChoice;
  /** `json` / `json_schema`: `done.object` or `done.object_error`, and the stream's partial objects. */
  response_format?: ResponseFormat;
  /** Present: reasoning parts are streamed (where the provider exposes them). */
  reasoning?: ReasoningOptions;
}

interface RequestFields extends CommonFields {
  /** At most 128. Tool-call parts are streamed; the client runs nothing (see `ToolLoopRequest`). */
  tools?: ToolDeclaration[];
}

/** The protocol's `start` fields without `type`: exactly one of `messages`, `prompt`, `brief`. */
export type StreamRequest =
  | (RequestFields & { messages: ChatMessage[]; prompt?: undefined; brief?: undefined; plan?: undefined })
  | (RequestFields & { prompt: string; messages?: undefined; brief?: undefined; plan?: undefined })
  | (RequestFields & { brief: Brief; plan?: Plan; messages?: undefined; prompt?: undefined });

/** What `execute` gets besides the arguments. */
export interface ToolContext {
  callId: string;
  name: string;
  /** The step (0-based) whose call this is. */
  step: number;
  /** Aborted when the loop is cancelled. */
  signal: AbortSignal;
  /** The conversation up to the assistant turn that made the call. */
  messages: ChatMessage[];
}

/** A tool of a client-side tool loop: declared to the model, run in the page. */
export interface ToolDefinition<Args = any> {
  description?: string;
  parameters?: JsonSchema;
  /**
   * Runs the call. A string result is sent as the tool message's content as it is, anything else
   * as JSON; a throw sends `{"error": <message>}`. Without `execute`, a step that calls the tool
   * ends the loop (run it yourself from `result.tool_calls`).
   */
  execute?(args: Args, context: ToolContext): unknown;
}

/** `client.stream()` with `tools` as a record runs a tool loop. */
export type ToolLoopRequest = CommonFields & {
  /** Declared to the model as `{name, description, parameters}`, name = the key. */
  tools: Record<string, ToolDefinition>;
  /** Steps (generations) at most; default 5 (`DEFAULT_MAX_STEPS`). */
  maxSteps?: number;
} & (
    | { messages: ChatMessage[]; prompt?: undefined; brief?: undefined }
    | { prompt: string; messages?: undefined; brief?: undefined }
  );

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

/** Reasoning text, only when `start` had `reasoning`. */
export interface ReasoningMessage {
  type: 'reasoning';
  id: string;
  seq: number;
  content: string;
  from_seq?: number;
}

export interface ToolCallStartMessage {
  type: 'tool_call_start';
  id: string;
  seq: number;
  call_id: string;
  name: string;
  /** The call's 0-based order in the turn. */
  index: number;
}

export interface ToolCallDeltaMessage {
  type: 'tool_call_delta';
  id: string;
  seq: number;
  call_id: string;
  /** A fragment of the arguments' JSON text. */
  arguments_delta: string;
  from_seq?: number;
}

export interface ToolCallEndMessage {
  type: 'tool_call_end';
  id: string;
  seq: number;
  call_id: string;
  name: string;
  /** The parsed JSON arguments; `null` with `arguments_error`. */
  arguments: unknown;
  arguments_error?: string;
}

/** The numbered messages between the ack and the terminal one. */
export type PartMessage = ChunkMessage | ReasoningMessage | ToolCallStartMessage | ToolCallDeltaMessage | ToolCallEndMessage;

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  estimated: boolean;
  /** Part of `completion_tokens`, when the provider reports it. */
  reasoning_tokens?: number;
  /** Part of `prompt_tokens`, when the provider reports it. */
  cached_tokens?: number;
}

export interface Metrics {
  provider: string;
  model: string;
  ttft_ms: number | null;
  duration_ms: number;
  tokens_per_second: number | null;
  estimated_cost_usd: number | null;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'cancelled' | (string & {});

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
  /** With `tools`: every call of the turn (pass them back verbatim on the assistant message). */
  tool_calls?: ToolCall[];
  /** With `reasoning`: the whole streamed reasoning text. */
  reasoning?: string;
  /** With a json `response_format`: the parsed value, valid against the schema (may be `null`). */
  object?: unknown;
  /** Instead of `object`: why the text is not valid JSON or fails the schema. */
  object_error?: string;
  /** Opaque; pass it back unchanged on the assistant message. */
  provider_state?: string;
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

export type ServerMessage = Ready | StartAck | Notice | PartMessage | Done | ErrorMessage | Pong;

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

/** Text, as a part (the same as a chunk). */
export interface TextPart {
  type: 'text';
  text: string;
  seq: number;
  fromSeq?: number;
}

export interface ReasoningPart {
  type: 'reasoning';
  text: string;
  seq: number;
  fromSeq?: number;
}

export interface ToolCallStartPart {
  type: 'tool-call-start';
  callId: string;
  name: string;
  index: number;
  seq: number;
}

export interface ToolCallDeltaPart {
  type: 'tool-call-delta';
  callId: string;
  /** A fragment of the arguments' JSON text. */
  argumentsDelta: string;
  seq: number;
  fromSeq?: number;
}

export interface ToolCallEndPart {
  type: 'tool-call-end';
  callId: string;
  name: string;
  /** The parsed arguments; `null` with `argumentsError`. */
  arguments: unknown;
  argumentsError?: string;
  seq: number;
}

export type ToolCallPart = ToolCallStartPart | ToolCallDeltaPart | ToolCallEndPart;

/** A numbered message of the stream, typed. A merged part covers `fromSeq`..`seq`. */
export type StreamPart = TextPart | ReasoningPart | ToolCallPart;

/** A tool call as far as it has arrived. */
export interface ToolCallState {
  callId: string;
  name: string;
  index: number;
  /** The arguments' JSON text so far. */
  argumentsText: string;
  ended: boolean;
  /** Once ended: the parsed arguments (`null` with `argumentsError`). */
  arguments?: unknown;
  argumentsError?: string;
}

/** `parsePartialJson()`'s answer. */
export interface PartialJson {
  /** The snapshot; undefined when `state` is `empty` or `invalid`, or when nothing has a shape yet. */
  value: unknown;
  state: 'empty' | 'partial' | 'complete' | 'invalid';
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

/** The callbacks of a stream `S` (a TokenwireStream or a ToolLoopStream) with parts `P` ending in `D`. */
export interface HandlersOf<S, P, D> {
  /** Aborting sends `cancel`; `result` resolves with `finish_reason: "cancelled"`. */
  signal?: AbortSignal;
  /** The gateway accepted the stream (a loop: its first step). */
  onStart?(ack: StartAck, stream: S): void;
  /** The gateway retries or fails over before the first token; `stream.provider`/`model` are already updated. */
  onNotice?(notice: Notice, stream: S): void;
  onChunk?(chunk: StreamChunk, stream: S): void;
  onReasoning?(part: Extract<P, { type: 'reasoning' }>, stream: S): void;
  /** A tool call's start, argument fragments and end. */
  onToolCall?(part: Extract<P, { type: 'tool-call-start' | 'tool-call-delta' | 'tool-call-end' }>, stream: S): void;
  /** Every part, text included, after `onChunk` / `onReasoning` / `onToolCall` (and a loop's step handlers). */
  onPart?(part: P, stream: S): void;
  /** A json / json_schema stream has a new partial object (after the `onPart` of its text). */
  onPartialObject?(value: unknown, stream: S): void;
  onDone?(done: D, stream: S): void;
  onError?(error: TokenwireError, stream: S): void;
}

export interface StreamHandlers extends HandlersOf<TokenwireStream, StreamPart, Done> {}

/** What a TokenwireStream and a ToolLoopStream (whose members speak of its current step, or of all steps) have in common. */
export interface StreamLike<P, D> extends AsyncIterable<StreamChunk> {
  /** The stream id (generated unless the request named one); a loop's is its first step's, step n is `<id>.n`. */
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
  /** All text so far; at `done`, the gateway's `content` (a loop: every step's, joined). */
  readonly text: string;
  /** All reasoning text so far; at `done`, the gateway's `reasoning` when it sent one. */
  readonly reasoning: string;
  /** A json / json_schema stream's newest partial object; at `done`, `done.object` when sent. */
  readonly partialObject: unknown;
  /** `'queued'` until the gateway's ack, `'streaming'` until the end (a loop: also while its tools run). */
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
  readonly result: Promise<D>;
  /**
   * Sends `cancel` (by key once reconnected, while the connection is down; SSE: `DELETE
   * /v1/streams/{key}`); `result` resolves with `finish_reason: "cancelled"` and the text so far.
   */
  cancel(): void;
  /** Chunks from the first; ends after `done`, throws the TokenwireError on failure. */
  [Symbol.asyncIterator](): AsyncIterableIterator<StreamChunk>;
  /** Every part from the first (text, reasoning, tool calls); ends after `done`, throws on failure. */
  parts(): AsyncIterableIterator<P>;
  /** A json / json_schema stream's snapshots: the current one, then each newer one (a slow reader skips some). */
  partialObjects(): AsyncIterableIterator<unknown>;
}

export interface TokenwireStream extends StreamLike<StreamPart, Done> {}

/** One generation (made by `client.stream()`). */
export declare class TokenwireStream {
  /** Streams are created by `client.stream()`. */
  private constructor();
  /** The tool calls so far, in order (fresh copies on every read). */
  readonly toolCalls: ToolCallState[];
}

// ---- tool loops --------------------------------------------------------------------------------

/** A step's parts carry the step (0-based). */
export type StepPart<P> = P & { step: number };

export interface StepStartPart {
  type: 'step-start';
  step: number;
  /** The step's stream id. */
  id: string;
}

export interface StepEndPart {
  type: 'step-end';
  step: number;
  done: Done;
}

/** A call the page ran (or answered with an error), as sent back in the tool message. */
export interface ToolResultPart {
  type: 'tool-result';
  step: number;
  callId: string;
  name: string;
  /** What `execute` returned (absent on an error). */
  output?: unknown;
  /** Why there is no output: invalid arguments, an unknown tool, or what `execute` threw. */
  error?: string;
  /** The tool message's content: a string output as it is, else JSON; `{"error": …}` on an error. */
  content: string;
}

export type LoopPart = StepPart<StreamPart> | StepStartPart | StepEndPart | ToolResultPart;

/** The last step's `done`, and the loop's. */
export interface ToolLoopDone extends Done {
  /** Every step's `done`, in order. */
  steps: Done[];
  /** The conversation: the request's messages, each tool step's assistant and tool messages, the final answer. */
  messages: ChatMessage[];
  /** The steps' usage summed; null when no step reported any. */
  totalUsage: Usage | null;
}

export interface ToolLoopHandlers extends HandlersOf<ToolLoopStream, LoopPart, ToolLoopDone> {
  onStepStart?(part: StepStartPart, loop: ToolLoopStream): void;
  onStepEnd?(part: StepEndPart, loop: ToolLoopStream): void;
  onToolResult?(part: ToolResultPart, loop: ToolLoopStream): void;
}

export interface ToolLoopStream extends StreamLike<LoopPart, ToolLoopDone> {}

/** A client-side tool loop as one logical stream (made by `client.stream()` with a `tools` record). */
export declare class ToolLoopStream {
  private constructor();
  /** The steps' streams so far, the current one last. */
  readonly steps: TokenwireStream[];
  /** The conversation so far (see `ToolLoopDone.messages`). */
  readonly messages: ChatMessage[];
}

export declare const DEFAULT_MAX_STEPS: number;

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
  /** A tool loop: `tools` as a record whose tools the page runs. */
  stream(request: ToolLoopRequest, handlers?: ToolLoopHandlers): ToolLoopStream;
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

/** What there is of a JSON text still arriving, parsed tolerantly. */
export declare function parsePartialJson(text: string): PartialJson;

/** An image part with the bytes inline; rejects an image over `MAX_IMAGE_BYTES` or of another format. */
export declare function imagePart(blob: Blob): Promise<ImageContent>;

/** 5 MiB: the largest image the gateway accepts (decoded bytes). */
export declare const MAX_IMAGE_BYTES: number;

/** PNG, JPEG, GIF, WebP. */
export declare const IMAGE_TYPES: readonly string[];
