// useChat wired to tokenwire: pick the transport (HTTP or one shared WebSocket) and the provider.
import React, { useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport, WebSocketChatTransport } from 'ai';

const token = new URLSearchParams(location.search).get('token') ?? ''; // a [server] auth_tokens entry, if set
const auth = token ? { authorization: `Bearer ${token}` } : {};
const transports = {
  // POST /v1/ui/chat answers the UI message stream; GET /v1/ui/chat/{id}/stream resumes it.
  http: new DefaultChatTransport({ api: '/v1/ui/chat', headers: auth }),
  // One socket for every chat; browsers cannot set headers on a WebSocket, so the token is a query parameter.
  ws: new WebSocketChatTransport({ url: '/v1/ui/ws', params: token ? { token } : {} }),
};

function Chat({ transport, provider, model }) {
  const { messages, sendMessage, status, stop, error } = useChat({ transport });
  const [input, setInput] = useState('');
  const submit = e => {
    e.preventDefault();
    if (!input.trim()) return;
    // Extra body fields use protocol v1's `start` names: provider, model, agent, options, ...
    sendMessage({ text: input }, { body: { provider, ...(model ? { model } : {}) } });
    setInput('');
  };
  return (
    <section>
      {messages.map(m => (
        <p key={m.id}>
          <b>{m.role}:</b> {m.parts.filter(p => p.type === 'text').map(p => p.text).join('')}
        </p>
      ))}
      {error && <p style={{ color: 'crimson' }}>{error.message}</p>}
      <form onSubmit={submit}>
        <input value={input} onChange={e => setInput(e.target.value)} placeholder="Say something" autoFocus />
        {status === 'streaming' || status === 'submitted' ? (
          <button type="button" onClick={stop}>Stop</button>
        ) : (
          <button type="submit">Send</button>
        )}
      </form>
    </section>
  );
}

function App() {
  const [kind, setKind] = useState('ws');
  const [provider, setProvider] = useState('rulebased');
  const [model, setModel] = useState('');
  const transport = useMemo(() => transports[kind], [kind]);
  return (
    <main style={{ fontFamily: 'system-ui', maxWidth: 720, margin: '2rem auto' }}>
      <h1>useChat × tokenwire</h1>
      <label>
        Transport{' '}
        <select value={kind} onChange={e => setKind(e.target.value)}>
          <option value="ws">WebSocket (/v1/ui/ws)</option>
          <option value="http">HTTP (/v1/ui/chat)</option>
        </select>
      </label>{' '}
      <label>
        Provider <input value={provider} onChange={e => setProvider(e.target.value)} size={10} />
      </label>{' '}
      <label>
        Model <input value={model} onChange={e => setModel(e.target.value)} placeholder="default" size={14} />
      </label>
      {/* a new transport starts a new chat: the key remounts useChat */}
      <Chat key={kind} transport={transport} provider={provider} model={model} />
    </main>
  );
}

createRoot(document.getElementById('root')).render(<App />);
