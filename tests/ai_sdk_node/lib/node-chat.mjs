// Minimal concrete Chat for Node: AbstractChat from `ai` plus an in-memory ChatState.
// (@ai-sdk/react's `Chat` is the same thing with React change callbacks; it also
// runs in Node, see http-scenarios.mjs "react-chat-class".)
import { AbstractChat } from 'ai';

class MemoryState {
  constructor(messages = []) {
    this.status = 'ready';
    this.error = undefined;
    this.messages = messages;
  }
  pushMessage = m => { this.messages = this.messages.concat(m); };
  popMessage = () => { this.messages = this.messages.slice(0, -1); };
  replaceMessage = (i, m) => {
    this.messages = [...this.messages.slice(0, i), this.snapshot(m), ...this.messages.slice(i + 1)];
  };
  snapshot = v => structuredClone(v);
}

export class NodeChat extends AbstractChat {
  constructor({ messages, ...init }) {
    super({ ...init, state: new MemoryState(messages) });
  }
}

// Wait until chat.status is one of `states` and no request is in flight.
export async function settle(chat, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    await new Promise(r => setTimeout(r, 10));
    if (chat.status === 'ready' || chat.status === 'error') {
      await new Promise(r => setTimeout(r, 50));
      if (chat.status === 'ready' || chat.status === 'error') return;
    }
    if (Date.now() - t0 > ms) throw new Error(`timeout, status=${chat.status}`);
  }
}
