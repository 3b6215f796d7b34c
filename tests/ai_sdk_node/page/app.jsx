// The useChat page of tests/e2e/test_ai_sdk_page.py: @ai-sdk/react over both of tokenwire's transports.
// ?phase=1  three chats over ONE WebSocketChatTransport (w-1 plain, w-2 stalls and is stopped,
//           w-3 answers late) and one over DefaultChatTransport (h-1).
// ?phase=2  after a reload: useChat({ id: 'w-3', resume: true }) picks w-3 up where it runs.
// ?token=   the gateway token: a header over HTTP, the `token` query parameter over the WebSocket.
import React, { useEffect } from 'react';
import { createRoot } from 'react-dom/client';
import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport, WebSocketChatTransport } from 'ai';

const query = new URLSearchParams(location.search);
const phase = query.get('phase') ?? '1';
const token = query.get('token') ?? '';
const body = { provider: 'rulebased' };
// one transport instance = one socket shared by every chat that uses it
const ws = new WebSocketChatTransport({ url: '/v1/ui/ws', params: { token }, body });
const http = new DefaultChatTransport({ api: '/v1/ui/chat', headers: { authorization: `Bearer ${token}` }, body });
window.__finished = [];

function Panel({ id, transport, send, resume }) {
  const { messages, sendMessage, status, stop, error } = useChat({
    id, transport, resume,
    onFinish: f => window.__finished.push({ id, finishReason: f.finishReason ?? null, isAbort: f.isAbort, isError: f.isError }),
  });
  useEffect(() => {
    if (send) sendMessage({ text: send.text }, { body: { options: send.options ?? {} } });
  }, []);
  useEffect(() => {
    window.__stop ??= {};
    window.__stop[id] = stop;
  }, [stop]);
  const assistant = messages.filter(m => m.role === 'assistant');
  const text = assistant.at(-1)?.parts.filter(p => p.type === 'text').map(p => p.text).join('') ?? '';
  return (
    <section data-chat={id} data-status={status} data-messages={messages.length} data-assistant={assistant.length}>
      <h2>{id} ({status})</h2>
      <p className="text">{text}</p>
      {error && <p className="error">{error.message}</p>}
    </section>
  );
}

function App() {
  return phase === '1' ? (
    <main data-phase="1">
      <Panel id="w-1" transport={ws} send={{ text: 'What is a good name for a cat?' }} />
      <Panel id="w-2" transport={ws} send={{ text: 'Tell me about rivers.', options: { fault: { stall_after_chunks: 1 } } }} />
      <Panel id="w-3" transport={ws} send={{ text: 'How do tides work?', options: { fault: { first_token_delay_ms: 4000 } } }} />
      <Panel id="h-1" transport={http} send={{ text: 'Why is the sky blue?' }} />
    </main>
  ) : (
    <main data-phase="2">
      <Panel id="w-3" transport={ws} resume />
    </main>
  );
}

createRoot(document.getElementById('root')).render(<App />);
