/**
 * ToolLoopStream: a client-side tool loop as one logical stream. Each step is a stream of its
 * own on the same client (so, over WebSocket, on the same socket); when a step ends with
 * `finish_reason: "tool_calls"`, the page runs the calls (`execute`), appends the assistant turn
 * (its `tool_calls` and `provider_state` verbatim from `done`) and one `tool` message per call,
 * and starts the next step — until a step ends without calls or `maxSteps` steps have run.
 * @module
 */

import { Feed } from './feed.js';
import { PartialObjects } from './partial-json.js';
import { StatsTracker } from './stats.js';
import { callHandler } from './stream.js';

/** @typedef {import('./stream.js').TokenwireStream} TokenwireStream */
/** @typedef {import('./errors.js').TokenwireError} TokenwireError */
/** @typedef {import('../index.js').ChatMessage} ChatMessage */
/** @typedef {import('../index.js').Done} Done */
/** @typedef {import('../index.js').LoopPart} LoopPart */
/** @typedef {import('../index.js').Notice} Notice */
/** @typedef {import('../index.js').StreamChunk} StreamChunk */
/** @typedef {import('../index.js').StreamHandlers} StreamHandlers */
/** @typedef {import('../index.js').StreamPart} StreamPart */
/** @typedef {import('../index.js').StreamRequest} StreamRequest */
/** @typedef {import('../index.js').StreamStats} StreamStats */
/** @typedef {import('../index.js').StreamStatus} StreamStatus */
/** @typedef {import('../index.js').ToolCall} ToolCall */
/** @typedef {import('../index.js').ToolDeclaration} ToolDeclaration */
/** @typedef {import('../index.js').ToolDefinition} ToolDefinition */
/** @typedef {import('../index.js').ToolLoopDone} ToolLoopDone */
/** @typedef {import('../index.js').ToolLoopHandlers} ToolLoopHandlers */
/** @typedef {import('../index.js').ToolLoopRequest} ToolLoopRequest */
/** @typedef {import('../index.js').ToolResultPart} ToolResultPart */
/** @typedef {import('../index.js').Usage} Usage */

/** Steps a loop runs at most unless the request says (`maxSteps`): a runaway loop stops there. */
export const DEFAULT_MAX_STEPS = 5;

/**
 * @typedef {object} LoopInit
 * @property {ToolLoopRequest} request
 * @property {ToolLoopHandlers} handlers
 * @property {(request: StreamRequest, handlers: StreamHandlers) => TokenwireStream} start starts one step
 * @property {number} startedAt
 */

const INTERNAL = Symbol('tokenwire.toolLoop');

/** The handler each kind of part goes to besides `onPart` (text goes to `onChunk`, as a chunk). */
const PART_HANDLERS = /** @type {const} */ ({
  reasoning: 'onReasoning',
  'tool-call-start': 'onToolCall',
  'tool-call-delta': 'onToolCall',
  'tool-call-end': 'onToolCall',
  'step-start': 'onStepStart',
  'step-end': 'onStepEnd',
  'tool-result': 'onToolResult',
});
const noop = () => {};

export class ToolLoopStream {
  /** @type {LoopInit['start']} */
  #start;
  /** @type {Omit<StreamRequest, 'tools' | 'messages' | 'prompt' | 'brief' | 'plan'>} the fields every step repeats */
  #base;
  /** @type {Record<string, ToolDefinition>} */
  #tools;
  /** @type {ToolDeclaration[]} */
  #declarations;
  #maxSteps;
  /** @type {ToolLoopHandlers} */
  #handlers;
  /** @type {ChatMessage[]} the conversation so far */
  #messages;
  /** @type {TokenwireStream[]} */
  #steps = [];
  /** @type {Done[]} */
  #dones = [];
  #text = '';
  #reasoning = '';
  /** @type {Feed<StreamChunk>} */
  #chunks = new Feed();
  /** @type {Feed<LoopPart>} */
  #parts = new Feed();
  #objects = new PartialObjects();
  #stats;
  /** @type {StreamStatus} */
  #status = 'queued';
  #acked = false;
  #ended = false;
  #cancelRequested = false;
  #running = false; // a step's stream is running (not the tools between steps)
  #constructing = true; // callbacks wait until `stream()` has returned
  #toolsAbort = new AbortController(); // the signal `execute` gets: aborted by cancel()
  /** @type {TokenwireError | null} */
  #error = null;
  /** @type {(() => void) | null} */
  #unlisten = null;
  /** @type {Promise<ToolLoopDone>} */
  #result;
  /** @type {(done: ToolLoopDone) => void} */
  #resolve = noop;
  /** @type {(error: TokenwireError) => void} */
  #reject = noop;

  /**
   * Loops are made by `client.stream()` with a `tools` record.
   * @param {symbol} key
   * @param {LoopInit} init
   */
  constructor(key, init) {
    if (key !== INTERNAL) throw new TypeError('a ToolLoopStream is created by TokenwireClient.stream()');
    const { tools, maxSteps = DEFAULT_MAX_STEPS, messages, prompt, ...base } = /** @type {any} */ (init.request);
    if (base.brief !== undefined || (messages === undefined) === (prompt === undefined)) {
      throw new TypeError('a tool loop takes either messages or a prompt (not a brief)');
    }
    if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new TypeError(`maxSteps must be an integer >= 1, not ${maxSteps}`);
    this.#declarations = declarations(tools);
    this.#tools = tools;
    this.#maxSteps = maxSteps;
    this.#base = base;
    this.#messages = messages ? [...messages] : [{ role: 'user', content: prompt }];
    this.#start = init.start;
    this.#handlers = init.handlers;
    this.#stats = new StatsTracker(init.startedAt);
    this.#result = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#result.catch(noop);
    const signal = init.handlers.signal;
    if (signal?.aborted) {
      this.#cancelRequested = true; // the first step starts cancelled: nothing is sent
    } else if (signal) {
      const onAbort = () => this.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    this.#startStep();
    this.#constructing = false;
  }

  /** The first step's id (later steps are `<id>.1`, `<id>.2`, …). */
  get id() {
    return this.#steps[0].id;
  }

  /** The streams of the steps so far, the current one last. */
  get steps() {
    return this.#steps.slice();
  }

  /** The current step's key, provider, model (see TokenwireStream). */
  get key() {
    return this.#current().key;
  }

  get provider() {
    return this.#current().provider;
  }

  get model() {
    return this.#current().model;
  }

  /** The notices of every step, in order. */
  get notices() {
    return this.#steps.flatMap((step) => step.notices);
  }

  /** The text of every step so far, joined (at the end: each step's `done.content`, joined). */
  get text() {
    return this.#text;
  }

  /** The reasoning of every step so far, joined. */
  get reasoning() {
    return this.#reasoning;
  }

  /** @returns {StreamStatus} `queued` until the first step's ack, `streaming` until the loop ends (tools running too) */
  get status() {
    return this.#status;
  }

  /** Whether the current step waits in the client, nothing sent yet. */
  get queued() {
    return this.#running && this.#current().queued;
  }

  get error() {
    return this.#error;
  }

  /** @returns {StreamStats} over all steps; tokens at the end: the steps' completion tokens summed */
  get stats() {
    return this.#stats.snapshot();
  }

  /**
   * The conversation so far: the request's messages (a prompt as a user message), then for each
   * step that called tools its assistant turn and tool messages, and at the end the final answer.
   * A fresh array: pass it as the next turn's `messages`.
   * @returns {ChatMessage[]}
   */
  get messages() {
    return this.#messages.slice();
  }

  /** The current step's partial object (see TokenwireStream.partialObject). */
  get partialObject() {
    return this.#objects.latest.value;
  }

  /** @returns {Promise<ToolLoopDone>} the last step's `done` with `steps`, `messages` and `totalUsage` */
  get result() {
    return this.#result;
  }

  /**
   * Stops the loop: cancels the running step (the loop then ends with its cancelled `done`), or,
   * while tools run, aborts their signal and ends at once. A no-op once ended.
   */
  cancel() {
    if (this.#ended || this.#cancelRequested) return;
    this.#cancelRequested = true;
    this.#toolsAbort.abort();
    if (this.#running) this.#current().cancel();
    else this.#finish({ .../** @type {Done} */ (this.#dones.at(-1)), finish_reason: 'cancelled' });
  }

  /** @returns {AsyncIterableIterator<StreamChunk>} the text chunks of every step, from the first */
  [Symbol.asyncIterator]() {
    return this.#chunks.iterate();
  }

  /** @returns {AsyncIterableIterator<LoopPart>} every part of every step, with step boundaries and tool results */
  parts() {
    return this.#parts.iterate();
  }

  /** @returns {AsyncIterableIterator<unknown>} the partial objects of json steps (see TokenwireStream.partialObjects) */
  partialObjects() {
    return this.#objects.latest.iterate();
  }

  // ---- steps -----------------------------------------------------------------------------------

  #current() {
    return /** @type {TokenwireStream} */ (this.#steps.at(-1));
  }

  #startStep() {
    const step = this.#steps.length;
    const choice = this.#base.tool_choice;
    /** @type {StreamRequest} */
    const request = { ...this.#base, messages: this.#messages.slice(), tools: this.#declarations };
    if (step > 0) {
      // A forced choice applies to the first step: forcing every step would never let the model answer.
      if (choice === 'required' || (choice && typeof choice === 'object')) request.tool_choice = 'auto';
      const id = `${this.#steps[0].id}.${step}`;
      if (id.length <= 64) request.id = id;
      else delete request.id; // too long for an id: the client makes one
    }
    this.#running = true;
    const stream = this.#start(request, this.#stepHandlers(step));
    this.#steps.push(stream);
    this.#emit({ type: 'step-start', step, id: stream.id });
    stream.result.then(
      (done) => this.#stepDone(step, done),
      (error) => this.#fail(error),
    );
  }

  /**
   * @param {number} step
   * @returns {StreamHandlers}
   */
  #stepHandlers(step) {
    return {
      signal: this.#cancelRequested ? AbortSignal.abort() : undefined,
      onStart: (ack) => {
        if (this.#acked) return;
        this.#acked = true;
        this.#status = 'streaming';
        this.#call('onStart', ack);
      },
      onNotice: (notice) => this.#call('onNotice', notice),
      onChunk: (chunk) => {
        this.#text += chunk.content;
        this.#chunks.push(chunk);
        this.#call('onChunk', chunk);
      },
      onPart: (part) => {
        this.#stats.part(part);
        if (part.type === 'reasoning') this.#reasoning += part.text;
        this.#emit({ ...part, step });
      },
      onPartialObject: (value) => {
        if (this.#objects.set(value)) this.#call('onPartialObject', value);
      },
    };
  }

  /**
   * @param {number} step
   * @param {Done} done
   */
  async #stepDone(step, done) {
    this.#running = false;
    this.#dones.push(done);
    this.#emit({ type: 'step-end', step, done });
    const calls = done.tool_calls ?? [];
    const more =
      done.finish_reason === 'tool_calls' &&
      calls.length > 0 &&
      step + 1 < this.#maxSteps &&
      calls.every((call) => !Object.hasOwn(this.#tools, call.name) || typeof this.#tools[call.name].execute === 'function');
    if (!more) {
      this.#finish(done);
      return;
    }
    if (this.#cancelRequested) {
      this.#finish({ ...done, finish_reason: 'cancelled' }); // cancelled as the step ended
      return;
    }
    const turn = assistantTurn(done);
    const messages = [...this.#messages, turn];
    const results = await Promise.all(calls.map((call) => this.#runCall(step, call, messages)));
    if (this.#ended) return; // cancelled meanwhile
    this.#messages.push(turn);
    for (const result of results) this.#messages.push({ role: 'tool', tool_call_id: result.callId, content: result.content });
    this.#startStep();
  }

  /**
   * Runs one call: a call whose arguments are not JSON, or of a tool not declared, is answered
   * with an error without running anything; an `execute` that throws is answered with its error.
   * @param {number} step
   * @param {ToolCall} call
   * @param {ChatMessage[]} messages the conversation up to the assistant turn that made the call
   * @returns {Promise<ToolResultPart>}
   */
  async #runCall(step, call, messages) {
    /** @type {ToolResultPart} */
    let result;
    const base = { type: /** @type {const} */ ('tool-result'), step, callId: call.call_id, name: call.name };
    const tool = Object.hasOwn(this.#tools, call.name) ? this.#tools[call.name] : null;
    if (typeof call.arguments_error === 'string') {
      result = failed(base, `invalid arguments: ${call.arguments_error}`);
    } else if (!tool?.execute) {
      result = failed(base, `unknown tool: ${call.name}`);
    } else {
      try {
        const context = { callId: call.call_id, name: call.name, step, signal: this.#toolsAbort.signal, messages };
        const output = await tool.execute(call.arguments, context);
        result = { ...base, output, content: typeof output === 'string' ? output : (JSON.stringify(output) ?? 'null') };
      } catch (error) {
        result = failed(base, error instanceof Error ? error.message : String(error));
      }
    }
    if (!this.#ended) this.#emit(result);
    return result;
  }

  // ---- the end ---------------------------------------------------------------------------------

  /** @param {Done} done the last step's, or (cancelled between steps) the one before with `finish_reason: "cancelled"` */
  #finish(done) {
    if (this.#ended) return;
    if (done.finish_reason !== 'cancelled' && (done.content || done.tool_calls?.length)) this.#messages.push(assistantTurn(done));
    this.#text = this.#dones.map((d) => d.content).join('');
    const totalUsage = sumUsage(this.#dones.map((d) => d.usage));
    /** @type {ToolLoopDone} */
    const result = { ...done, steps: this.#dones.slice(), messages: this.messages, totalUsage };
    this.#stats.end(totalUsage);
    this.#end(done.finish_reason === 'cancelled' ? 'cancelled' : 'done', null);
    this.#resolve(result);
    this.#call('onDone', result);
  }

  /** @param {TokenwireError} error */
  #fail(error) {
    if (this.#ended) return;
    this.#running = false;
    this.#toolsAbort.abort();
    this.#end('error', error);
    this.#reject(error);
    this.#call('onError', error);
  }

  /**
   * @param {StreamStatus} status
   * @param {TokenwireError | null} error
   */
  #end(status, error) {
    this.#ended = true;
    this.#unlisten?.();
    this.#unlisten = null;
    this.#status = status;
    this.#error = error;
    this.#stats.end(null);
    this.#chunks.end(error);
    this.#parts.end(error);
    this.#objects.latest.end(error);
  }

  /** @param {LoopPart} part */
  #emit(part) {
    this.#parts.push(part);
    if (part.type !== 'text') callHandler(this.#handlers[PART_HANDLERS[part.type]], [part, this], this.#constructing);
    this.#call('onPart', part);
  }

  /**
   * @template {Exclude<keyof ToolLoopHandlers, 'signal'>} K
   * @param {K} name
   * @param {Parameters<NonNullable<ToolLoopHandlers[K]>>[0]} value
   */
  #call(name, value) {
    callHandler(/** @type {Function | undefined} */ (this.#handlers[name]), [value, this], this.#constructing);
  }
}

/**
 * The declarations the gateway gets from a `tools` record: name, description, parameters.
 * @param {Record<string, ToolDefinition>} tools
 * @returns {ToolDeclaration[]}
 */
function declarations(tools) {
  return Object.entries(tools).map(([name, tool]) => {
    if (!tool || typeof tool !== 'object') throw new TypeError(`tools.${name} must be an object`);
    if (tool.execute !== undefined && typeof tool.execute !== 'function') throw new TypeError(`tools.${name}.execute must be a function`);
    /** @type {ToolDeclaration} */
    const declaration = { name };
    if (tool.description !== undefined) declaration.description = tool.description;
    if (tool.parameters !== undefined) declaration.parameters = tool.parameters;
    return declaration;
  });
}

/**
 * @param {Pick<ToolResultPart, 'type' | 'step' | 'callId' | 'name'>} base
 * @param {string} error
 * @returns {ToolResultPart}
 */
function failed(base, error) {
  return { ...base, error, content: JSON.stringify({ error }) };
}

/**
 * The assistant turn of a step, to pass back: its text, and its calls and provider state verbatim.
 * @param {Done} done
 * @returns {ChatMessage}
 */
function assistantTurn(done) {
  /** @type {ChatMessage} */
  const message = { role: 'assistant' };
  if (done.content) message.content = done.content;
  if (done.tool_calls?.length) message.tool_calls = done.tool_calls;
  if (typeof done.provider_state === 'string') message.provider_state = done.provider_state;
  return message;
}

/**
 * @param {Array<Usage | null>} usages
 * @returns {Usage | null} their sum; null when no step reported usage
 */
function sumUsage(usages) {
  /** @type {Usage | null} */
  let total = null;
  for (const usage of usages) {
    if (!usage) continue;
    total ??= { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, estimated: false };
    total.prompt_tokens += usage.prompt_tokens;
    total.completion_tokens += usage.completion_tokens;
    total.total_tokens += usage.total_tokens;
    total.estimated ||= usage.estimated;
    for (const detail of /** @type {const} */ (['reasoning_tokens', 'cached_tokens'])) {
      const n = usage[detail];
      if (typeof n === 'number') total[detail] = (total[detail] ?? 0) + n;
    }
  }
  return total;
}

/**
 * @param {LoopInit} init
 * @returns {ToolLoopStream}
 */
export function createToolLoop(init) {
  return new ToolLoopStream(INTERNAL, init);
}
