// The bench's peer for POST /v1/ui/chat: the AI SDK's own Node route (streamText -> UI message
// stream) in front of the bench's fake upstream, as an app built on the SDK would run it.
// Run with the pinned packages of tests/ai_sdk_node on its Node 22, from that directory
// (bench/gateway.py start_ai_sdk_route passes this text to --eval, which resolves imports there):
//   node --input-type=module --eval "$(cat route.mjs)" -- --port <port> --upstream <upstream>/v1
// POST /api/chat takes the body DefaultChatTransport posts plus `model` (the bench scenario);
// GET /healthz answers 200 once listening.
import http from 'node:http';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { createOpenAI } from '@ai-sdk/openai';
import { streamText, convertToModelMessages } from 'ai';

const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
const openai = createOpenAI({ baseURL: values.upstream, apiKey: 'sk-bench' });

const server = http.createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    return;
  }
  if (req.method !== 'POST' || req.url !== '/api/chat') {
    res.writeHead(404);
    res.end();
    return;
  }
  let raw = '';
  for await (const chunk of req) raw += chunk;
  const { messages, model } = JSON.parse(raw);
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const result = streamText({
    model: openai.chat(model), // Chat Completions, as the gateway's OpenAI provider speaks
    messages: await convertToModelMessages(messages),
    abortSignal: abort.signal,
  });
  const response = result.toUIMessageStreamResponse();
  res.writeHead(response.status, Object.fromEntries(response.headers));
  Readable.fromWeb(response.body).pipe(res);
});
server.keepAliveTimeout = 120_000; // the bench keeps its connections between streams
server.listen(Number(values.port), '127.0.0.1');
