import { describe, expect, it } from 'vitest';
import type { ConversationEvent } from '../api/types.ts';
import { ConversationState } from './conversation-state.ts';

let seq = 0;
const at = '2026-01-01T00:00:00.000Z';
const event = (data: Record<string, unknown>): ConversationEvent => ({ seq: ++seq, createdAt: at, ...data }) as ConversationEvent;

describe('ConversationState', () => {
  it('builds turns with streamed text, tool cards, usage and queued messages', () => {
    seq = 0;
    const state = new ConversationState();
    state.apply([event({ type: 'turn.queued', turnId: 't1', text: 'hello' }), event({ type: 'turn.started', turnId: 't1', text: 'hello' })]);
    expect(state.activity()).toEqual({ kind: 'thinking', turnId: 't1' });
    state.apply([event({ type: 'message.delta', turnId: 't1', messageId: 'm1', text: 'Hel' }), event({ type: 'message.delta', turnId: 't1', messageId: 'm1', text: 'lo' })]);
    expect(state.activity()).toEqual({ kind: 'writing', turnId: 't1' });
    expect(state.turns[0]!.items).toEqual([{ kind: 'text', id: 'm1', text: 'Hello', done: false }]);
    const before = state.turns[0];

    state.apply([
      event({ type: 'message.completed', turnId: 't1', messageId: 'm1', text: 'Hello!' }),
      event({ type: 'tool.started', turnId: 't1', toolUseId: 'u1', name: 'Bash', input: { command: 'ls' } }),
      event({ type: 'turn.queued', turnId: 't2', text: 'next' }),
    ]);
    expect(state.activity()).toEqual({ kind: 'tool', turnId: 't1', name: 'Bash' });
    expect(state.queued).toBe(1);
    expect(state.turns[0]).not.toBe(before);
    const second = state.turns[1];

    state.apply([
      event({ type: 'tool.ended', turnId: 't1', toolUseId: 'u1', output: 'a.txt', isError: false }),
      event({ type: 'turn.ended', turnId: 't1', status: 'completed', usage: { inputTokens: 10, outputTokens: 5, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 }, costUsd: 0.01, durationMs: 900 }),
    ]);
    expect(state.turns[1]).toBe(second);
    expect(state.filesVersion).toBe(1);
    expect(state.turns[0]).toMatchObject({
      status: 'completed',
      costUsd: 0.01,
      items: [
        { kind: 'text', text: 'Hello!', done: true },
        { kind: 'tool', name: 'Bash', input: { command: 'ls' }, output: 'a.txt', isError: false },
      ],
    });
    expect(state.activity()).toEqual({ kind: 'idle' });
  });

  it('ignores events it has already applied', () => {
    seq = 0;
    const state = new ConversationState();
    const events = [event({ type: 'turn.queued', turnId: 't1', text: 'x' }), event({ type: 'message.delta', turnId: 't1', messageId: 'm', text: 'a' })];
    state.apply(events);
    state.apply(events);
    expect(state.turns[0]!.items).toEqual([{ kind: 'text', id: 'm', text: 'a', done: false }]);
  });

  it('keeps a failed turn’s error once, and ends an interrupted text as it stands', () => {
    seq = 0;
    const state = new ConversationState();
    const error = { code: 'UPSTREAM_ERROR', message: 'overloaded' };
    state.apply([
      event({ type: 'turn.started', turnId: 't1', text: 'x' }),
      event({ type: 'message.delta', turnId: 't1', messageId: 'm', text: 'partial' }),
      event({ type: 'error', turnId: 't1', ...error }),
      event({ type: 'turn.ended', turnId: 't1', status: 'failed', usage: null, costUsd: null, durationMs: 5, error }),
      event({ type: 'error', turnId: null, code: 'SERVER_RESTARTED', message: 'restarted' }),
    ]);
    expect(state.turns[0]).toMatchObject({ status: 'failed', errors: [error], items: [{ text: 'partial', done: true }] });
    expect(state.errors).toEqual([{ seq: 5, code: 'SERVER_RESTARTED', message: 'restarted' }]);
  });
});
