// The real `ai` package's WebSocketChatTransport, through its Chat, against a live gateway's
// GET /v1/ui/ws (started by tests/e2e/test_ai_sdk_ws.py, which sets TOKENWIRE_HTTP). Node 22's
// global WebSocket, as in a browser. The sockets go through a TCP proxy of this file's own, which
// counts connections and can cut them (a dropped connection, without the server's help).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { WebSocketChatTransport, lastAssistantMessageIsCompleteWithToolCalls } from 'ai';
import { NodeChat, settle } from './lib/node-chat.mjs';

const HTTP = process.env.TOKENWIRE_HTTP;
const TOKEN = process.env.TOKENWIRE_TOKEN;
const WEATHER = { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } };
let proxy;

function startProxy(target) {
  const { hostname, port } = new URL(target);
  const sockets = new Set();
  let connections = 0;
  const server = net.createServer(client => {
    connections += 1;
    const upstream = net.connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}/v1/ui/ws`,
    connections: () => connections,
    cut: () => { for (const s of sockets) s.destroy(); },
    close: () => new Promise(r => { for (const s of sockets) s.destroy(); server.close(r); }),
  })));
}

before(async () => { proxy = await startProxy(HTTP); });
after(async () => { await proxy.close(); });

const transport = (body = {}) => new WebSocketChatTransport({
  url: proxy.url,
  params: { token: TOKEN },
  protocols: ['tokenwire.ui.v1'],
  body: { provider: 'rulebased', ...body },
});

function makeChat(id, t, extra = {}) {
  const events = { finish: [], errors: [] };
  const chat = new NodeChat({
    id, transport: t,
    onFinish: f => events.finish.push({ finishReason: f.finishReason, isAbort: f.isAbort, isDisconnect: f.isDisconnect, isError: f.isError }),
    onError: e => events.errors.push(e.message),
    ...extra,
  });
  return { chat, events };
}

const textOf = message => message.parts.filter(p => p.type === 'text').map(p => p.text).join('');

async function activeStreams() {
  const response = await fetch(`${HTTP}/healthz`);
  return (await response.json()).active_streams;
}

async function until(check, what, ms = 5000) {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 10));
  }
}

test('text: one assistant message, done, with usage metadata', async () => {
  const { chat, events } = makeChat('t-text', transport());
  await chat.sendMessage({ text: 'Why is the sky blue?' });
  await settle(chat);
  assert.equal(chat.status, 'ready');
  assert.equal(chat.messages.length, 2);
  const reply = chat.messages[1];
  assert.equal(reply.role, 'assistant');
  assert.match(reply.id, /^msg_/);
  assert.ok(textOf(reply).includes('Why is the sky blue?'));
  assert.equal(reply.parts.at(-1).state, 'done');
  assert.equal(reply.metadata.metrics.provider, 'rulebased');
  assert.deepEqual(events.finish, [{ finishReason: 'stop', isAbort: false, isDisconnect: false, isError: false }]);
});

test('reasoning: a reasoning part before the text', async () => {
  const { chat } = makeChat('t-reasoning', transport({ reasoning: { effort: 'low' } }));
  await chat.sendMessage({ text: 'Explain tides.' });
  await settle(chat);
  assert.equal(chat.status, 'ready');
  const types = chat.messages[1].parts.map(p => p.type);
  assert.ok(types.indexOf('reasoning') >= 0 && types.indexOf('reasoning') < types.indexOf('text'), types.join());
  assert.ok(chat.messages[1].parts.find(p => p.type === 'reasoning').text.length > 0);
});

test('a tool call, a client-side result and the automatic second turn', async () => {
  let chatRef;
  const calls = [];
  const { chat, events } = makeChat('t-tool', transport({ tools: [WEATHER] }), {
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
    onToolCall: ({ toolCall }) => {
      calls.push(toolCall);
      void chatRef.addToolOutput({ tool: toolCall.toolName, toolCallId: toolCall.toolCallId, output: { tempC: 7 } });
    },
  });
  chatRef = chat;
  await chat.sendMessage({ text: 'Use get_weather for Oslo.' });
  await until(() => events.finish.length === 2 && chat.status === 'ready', 'the second turn');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].toolName, 'get_weather');
  assert.equal(chat.messages.length, 2, 'the second turn continues the same assistant message');
  const parts = chat.messages[1].parts;
  const tool = parts.find(p => p.type === 'tool-get_weather');
  assert.equal(tool.state, 'output-available');
  assert.deepEqual(tool.output, { tempC: 7 });
  assert.ok(textOf(chat.messages[1]).includes('7'), textOf(chat.messages[1]));
  assert.deepEqual(events.finish.map(f => f.finishReason), ['tool-calls', 'stop']);
});

test('stop mid-stream: the stream is cancelled upstream at once', async () => {
  const { chat, events } = makeChat('t-stop', transport({ options: { fault: { stall_after_chunks: 2 } } }));
  const sent = chat.sendMessage({ text: 'Tell me about whales.' });
  await until(() => chat.messages.length === 2 && textOf(chat.messages[1]).length > 0, 'the first text');
  assert.equal(await activeStreams(), 1);
  await chat.stop();
  await sent;
  await until(async () => (await activeStreams()) === 0, 'the upstream to be cancelled');
  assert.equal(chat.status, 'ready');
  assert.equal(events.finish[0].isAbort, true);
});

test('resume after a dropped connection: one assistant message, replayed then live', async () => {
  const t = transport();
  const { chat, events } = makeChat('t-resume', t);
  const before = proxy.connections();
  const sent = chat.sendMessage({ text: 'Describe the water cycle in detail.' });
  await until(() => chat.messages.length === 2 && textOf(chat.messages[1]).length > 0, 'the first text');
  const messageId = chat.messages[1].id;
  proxy.cut();
  await sent;
  await settle(chat);
  assert.equal(chat.status, 'error');
  assert.match(events.errors[0], /network/);
  await chat.resumeStream();
  await settle(chat);
  assert.equal(proxy.connections() - before, 2, 'the resume came on a new socket');
  assert.equal(chat.status, 'ready');
  assert.equal(chat.messages.length, 2);
  assert.equal(chat.messages[1].id, messageId);
  assert.ok(textOf(chat.messages[1]).includes('Describe the water cycle in detail.'));
  assert.equal(chat.messages[1].parts.filter(p => p.type === 'text').length, 1);
  assert.equal(chat.messages[1].parts.at(-1).state, 'done');
});

test('an upstream error errors that chat with "<code>: <message>"', async () => {
  const { chat, events } = makeChat('t-error', transport({ options: { fault: { error_after_chunks: 2 } } }));
  await chat.sendMessage({ text: 'hello' });
  await settle(chat);
  assert.equal(chat.status, 'error');
  assert.match(chat.error.message, /^upstream_unavailable: /);
  assert.equal(events.finish[0].isError, true);
});

test('a refusal errors that chat with its code', async () => {
  const { chat } = makeChat('t-refused', transport({ provider: 'nope' }));
  await chat.sendMessage({ text: 'hello' });
  await settle(chat);
  assert.equal(chat.status, 'error');
  assert.match(chat.error.message, /^unknown_provider: /);
});

test('three chats on one socket, each whole', async () => {
  const t = transport();
  const before = proxy.connections();
  const chats = ['a', 'b', 'c'].map(n => makeChat(`t-three-${n}`, t).chat);
  await Promise.all(chats.map((chat, n) => chat.sendMessage({ text: `question number ${n}` })));
  await Promise.all(chats.map(chat => settle(chat)));
  assert.equal(proxy.connections() - before, 1);
  chats.forEach((chat, n) => {
    assert.equal(chat.status, 'ready');
    assert.equal(chat.messages.length, 2);
    assert.ok(textOf(chat.messages[1]).includes(`question number ${n}`));
  });
});
