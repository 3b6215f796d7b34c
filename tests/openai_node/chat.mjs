// Drives the gateway's OpenAI-compatible API with the official `openai` npm package, the way an
// app does after changing only `baseURL`. Run by tests/e2e/test_openai_compat.py against a live
// gateway (TOKENWIRE_BASE_URL, TOKENWIRE_TOKEN) whose `openai` provider speaks to a fake upstream
// scripted to answer the three upstream scenarios in order: a mid-stream error, a stream that
// hangs after its first text, then a recorded gpt-4o-mini tool call. Prints one JSON object with
// what it saw.
import OpenAI from "openai";

const baseURL = process.env.TOKENWIRE_BASE_URL;
const apiKey = process.env.TOKENWIRE_TOKEN;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const messages = [
  { role: "developer", content: "Be brief." },
  { role: "user", content: [{ type: "text", text: "Say hello" }] },
];

async function errorOf(fn) {
  try {
    await fn();
    return null;
  } catch (e) {
    return {
      name: e.constructor.name,
      isAPIError: e instanceof OpenAI.APIError,
      status: e.status ?? null,
      code: e.code ?? null,
      type: e.type ?? null,
      message: e.message,
    };
  }
}

const out = {};

const stream = await client.chat.completions.create({
  model: "rulebased",
  messages,
  stream: true,
  stream_options: { include_usage: true },
  max_tokens: 30,
});
const chunks = [];
for await (const chunk of stream) chunks.push(chunk);
out.stream = {
  ids: [...new Set(chunks.map((c) => c.id))],
  objects: [...new Set(chunks.map((c) => c.object))],
  models: [...new Set(chunks.map((c) => c.model))],
  first: chunks[0].choices[0].delta,
  text: chunks.flatMap((c) => c.choices.map((choice) => choice.delta.content ?? "")).join(""),
  finish: chunks.flatMap((c) => c.choices.map((choice) => choice.finish_reason)).filter(Boolean),
  usage: chunks.at(-1).usage,
  lastChoices: chunks.at(-1).choices.length,
};

const completion = await client.chat.completions.create({ model: "rulebased", messages, max_tokens: 30 });
out.completion = {
  object: completion.object,
  model: completion.model,
  text: completion.choices[0].message.content,
  role: completion.choices[0].message.role,
  finish: completion.choices[0].finish_reason,
  usage: completion.usage,
};

out.models = (await client.models.list()).data.map((m) => m.id);
out.retrieved = await client.models.retrieve("rulebased/script");

out.notFound = await errorOf(() => client.chat.completions.create({ model: "nope", messages }));
out.badRequest = await errorOf(() => client.chat.completions.create({ model: "rulebased", messages, n: 2 }));
out.auth = await errorOf(() => new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 }).models.list());

const before = [];
out.midStream = await errorOf(async () => {
  const s = await client.chat.completions.create({ model: "openai/gpt-4o-mini", messages, stream: true });
  for await (const c of s) before.push(c.choices[0]?.delta?.content ?? "");
});
out.midStreamText = before.join("");

// Leaving the loop early aborts the request: the gateway must cancel the upstream.
const hanging = await client.chat.completions.create({ model: "openai/gpt-4o-mini", messages, stream: true });
let seen = "";
for await (const c of hanging) {
  seen += c.choices[0]?.delta?.content ?? "";
  if (seen) break;
}
out.abortedAfter = seen;

// A streamed tool call, assembled by the SDK's own helper from the `delta.tool_calls` fragments.
const toolStream = client.chat.completions.stream({
  model: "openai/gpt-4o-mini",
  messages: [{ role: "user", content: "What is the capital of the UK?" }],
  tools: [
    {
      type: "function",
      function: {
        name: "get_capital",
        parameters: { type: "object", properties: { country: { type: "string" } }, required: ["country"] },
      },
    },
  ],
});
const argumentsDone = [];
toolStream.on("tool_calls.function.arguments.done", (e) => argumentsDone.push({ name: e.name, arguments: e.arguments }));
const toolCompletion = await toolStream.finalChatCompletion();
out.toolCall = {
  finish: toolCompletion.choices[0].finish_reason,
  calls: toolCompletion.choices[0].message.tool_calls,
  argumentsDone,
};

console.log(JSON.stringify(out));
