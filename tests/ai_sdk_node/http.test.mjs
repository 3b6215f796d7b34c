// DefaultChatTransport (ai@7) through the real AbstractChat against a live tokenwire gateway,
// started by tests/e2e/test_ai_sdk_http.py, which passes:
//   TOKENWIRE_URL       a gateway with a resume grace period (resume after a cut connection)
//   TOKENWIRE_STOP_URL  a gateway with resume_grace_seconds = 0 (a stop cancels upstream at once)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithToolCalls } from 'ai';
import { NodeChat, settle } from './lib/node-chat.mjs';

const BASE = process.env.TOKENWIRE_URL;
const STOP_BASE = process.env.TOKENWIRE_STOP_URL;
assert.ok(BASE && STOP_BASE, 'TOKENWIRE_URL and TOKENWIRE_STOP_URL must be set');

const PROMPT = 'What is a tide pool?';
const WEATHER = {
  name: 'get_weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

function makeChat(id, { base = BASE, body = {}, ...init } = {}) {
  const events = { finish: [], errors: [], data: [], requests: [] };
  const chat = new NodeChat({
    id,
    transport: new DefaultChatTransport({
      api: `${base}/v1/ui/chat`,
      body: { provider: 'rulebased', ...body },
      fetch: async (url, options) => {
        const response = await fetch(url, options);
        const messageId = options?.body ? JSON.parse(options.body).messageId : undefined;
        events.requests.push({ method: options?.method ?? 'GET', url: String(url), status: response.status, messageId });
        return response;
      },
    }),
    onFinish: f => events.finish.push({ finishReason: f.finishReason, isAbort: f.isAbort, isError: f.isError }),
    onError: e => events.errors.push(e.message),
    onData: d => events.data.push(d),
    ...init,
  });
  return { chat, events };
}

async function completionText(base, prompt = PROMPT) {
  const response = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: prompt }] }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).content;
}

async function activeStreams(base) {
  return (await (await fetch(`${base}/healthz`)).json()).active_streams;
}

async function until(condition, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise(r => setTimeout(r, 10));
  }
}

const textOf = message => message.parts.filter(p => p.type === 'text').map(p => p.text).join('');

test('text: one assistant message with the gateway\'s answer and usage metadata', async () => {
  const { chat, events } = makeChat('c-text');
  await chat.sendMessage({ text: PROMPT });
  await settle(chat);
  assert.equal(chat.status, 'ready');
  assert.equal(chat.messages.length, 2);
  const answer = chat.messages[1];
  assert.equal(answer.role, 'assistant');
  assert.match(answer.id, /^msg_/);
  assert.deepEqual(answer.parts.map(p => p.type), ['step-start', 'text']);
  assert.equal(answer.parts[1].text, await completionText(BASE));
  assert.equal(answer.parts[1].state, 'done');
  assert.ok(answer.metadata.usage.completion_tokens > 0);
  assert.ok('metrics' in answer.metadata);
  assert.deepEqual(events.finish, [{ finishReason: 'stop', isAbort: false, isError: false }]);
});

test('reasoning: a reasoning part before the text', async () => {
  const { chat } = makeChat('c-think', { body: { reasoning: {} } });
  await chat.sendMessage({ text: PROMPT });
  await settle(chat);
  assert.equal(chat.status, 'ready');
  const parts = chat.messages[1].parts;
  assert.deepEqual(parts.map(p => p.type), ['step-start', 'reasoning', 'text']);
  assert.ok(parts[1].text.startsWith(`The user asks: "${PROMPT}".`), parts[1].text);
  assert.equal(parts[1].state, 'done');
  assert.equal(parts[2].text, await completionText(BASE));
});

test('tool call: a client-side result, then the automatic second turn in the same message', async () => {
  let chatRef;
  const calls = [];
  const { chat, events } = makeChat('c-tool', {
    body: { tools: [WEATHER] },
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
    onToolCall: ({ toolCall }) => {
      calls.push(toolCall);
      void chatRef.addToolOutput({ tool: toolCall.toolName, toolCallId: toolCall.toolCallId, output: { tempC: 4 } });
    },
  });
  chatRef = chat;
  await chat.sendMessage({ text: 'Use get_weather for Paris' });
  await until(() => events.finish.length === 2 && chat.status === 'ready');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].toolName, 'get_weather');
  assert.deepEqual(calls[0].input, { city: 'Paris' });
  assert.equal(chat.messages.length, 2, JSON.stringify(chat.messages));
  const answer = chat.messages[1];
  assert.deepEqual(answer.parts.map(p => p.type), ['step-start', 'tool-get_weather', 'step-start', 'text']);
  assert.equal(answer.parts[1].state, 'output-available');
  assert.deepEqual(answer.parts[1].output, { tempC: 4 });
  assert.match(answer.parts[3].text, /^The get_weather tool returned: \{"tempC": ?4\}/);
  assert.deepEqual(events.finish.map(f => f.finishReason), ['tool-calls', 'stop']);
  // The second turn continued the message: the POST carried its id, and start repeated it.
  assert.deepEqual(events.requests.map(r => [r.method, r.status]), [['POST', 200], ['POST', 200]]);
  assert.equal(events.requests[0].messageId, undefined);
  assert.equal(events.requests[1].messageId, answer.id);
});

test('stop mid-stream: the fetch is aborted and the stream is cancelled upstream', async () => {
  const { chat, events } = makeChat('c-stop', { base: STOP_BASE });
  const sent = chat.sendMessage({ text: PROMPT });
  await until(() => chat.messages[1] && textOf(chat.messages[1]).length > 0);
  assert.equal(await activeStreams(STOP_BASE), 1);
  await chat.stop();
  await sent;
  await settle(chat);
  assert.equal(chat.status, 'ready');
  assert.equal(events.finish[0].isAbort, true);
  const partial = textOf(chat.messages[1]);
  assert.ok(partial.length > 0 && partial.length < (await completionText(STOP_BASE)).length);
  await until(async () => (await activeStreams(STOP_BASE)) === 0, 5000);
  // Nothing left to resume: the stream ended (cancelled), so the chat has no active stream.
  const resume = await fetch(`${STOP_BASE}/v1/ui/chat/c-stop/stream`);
  assert.equal(resume.status, 204);
});

// A TCP proxy in front of the gateway whose open connections can be cut.
function cuttableProxy(target) {
  const { hostname, port } = new URL(target);
  const sockets = new Set();
  const server = net.createServer(client => {
    const upstream = net.connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    cut: () => { for (const s of sockets) s.destroy(); },
    close: () => new Promise(r => { for (const s of sockets) s.destroy(); server.close(r); }),
  })));
}

test('resume after a dropped connection: one assistant message, same id, whole text', async () => {
  const proxy = await cuttableProxy(BASE);
  after(() => proxy.close());
  const { chat, events } = makeChat('c-drop', { base: proxy.url });
  const sent = chat.sendMessage({ text: PROMPT });
  await until(() => chat.messages[1] && textOf(chat.messages[1]).length > 0);
  const messageId = chat.messages[1].id;
  proxy.cut();
  await sent;
  await settle(chat);
  assert.equal(chat.status, 'error');  // Node's fetch: TypeError "terminated"
  await chat.resumeStream();
  await settle(chat);
  assert.equal(chat.status, 'ready');
  assert.equal(chat.messages.length, 2);
  assert.equal(chat.messages[1].id, messageId);
  assert.equal(textOf(chat.messages[1]), await completionText(BASE));
  assert.equal(events.finish.at(-1).finishReason, 'stop');
  assert.deepEqual(events.requests.map(r => [r.method, r.status]), [['POST', 200], ['GET', 200]]);
  assert.equal(events.requests[1].url, `${proxy.url}/v1/ui/chat/c-drop/stream`);  // the SDK's default URL
  // The stream ended: a second resume finds nothing (204) and changes nothing.
  await chat.resumeStream();
  await settle(chat);
  assert.equal(events.requests.at(-1).status, 204);
  assert.equal(chat.status, 'ready');
  assert.equal(chat.messages.length, 2);
});

test('upstream error: the chat ends in its error state with the code', async () => {
  const { chat, events } = makeChat('c-fault', { body: { options: { fault: { error_after_chunks: 1 } } } });
  await chat.sendMessage({ text: PROMPT });
  await settle(chat);
  assert.equal(chat.status, 'error');
  assert.match(chat.error.message, /^upstream_unavailable: /);
  assert.deepEqual(events.errors, [chat.error.message]);
  assert.equal(events.finish[0].isError, true);
});

test('refusal: the gateway\'s JSON error body is the chat\'s error', async () => {
  const { chat } = makeChat('c-refused', { body: { provider: 'nope' } });
  await chat.sendMessage({ text: PROMPT });
  await settle(chat);
  assert.equal(chat.status, 'error');
  const body = JSON.parse(chat.error.message);
  assert.equal(body.error.code, 'unknown_provider');
  assert.equal(chat.error.statusCode, 404);
});

test('three chats at once: each gets its own whole answer', async () => {
  const prompts = ['What is a tide pool?', 'Why is the sea salty?', 'How do waves form?'];
  const chats = prompts.map((_, i) => makeChat(`c-many-${i}`).chat);
  await Promise.all(chats.map((chat, i) => chat.sendMessage({ text: prompts[i] })));
  await Promise.all(chats.map(chat => settle(chat)));
  const ids = new Set();
  for (const [i, chat] of chats.entries()) {
    assert.equal(chat.status, 'ready');
    assert.equal(chat.messages.length, 2);
    assert.equal(textOf(chat.messages[1]), await completionText(BASE, prompts[i]));
    ids.add(chat.messages[1].id);
  }
  assert.equal(ids.size, 3);
});
