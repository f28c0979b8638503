import { describe, expect, it } from 'vitest';
import type { ConversationEvent } from '../api/types.ts';
import { Announcer, spokenText } from './announcements.ts';

let seq = 0;
const event = (data: Record<string, unknown>): ConversationEvent => ({ seq: ++seq, createdAt: '2026-01-01T00:00:00.000Z', ...data }) as ConversationEvent;

describe('Announcer', () => {
  it('announces status changes and finished messages, never the streamed deltas', () => {
    const announcer = new Announcer();
    const said = announcer.take([
      event({ type: 'turn.queued', turnId: 't1', text: 'hi' }),
      event({ type: 'turn.started', turnId: 't1', text: 'hi' }),
      event({ type: 'message.delta', turnId: 't1', messageId: 'm1', text: 'Hel' }),
      event({ type: 'message.delta', turnId: 't1', messageId: 'm1', text: 'lo' }),
      event({ type: 'message.completed', turnId: 't1', messageId: 'm1', text: 'Hello **there**' }),
      event({ type: 'tool.started', turnId: 't1', toolUseId: 'u1', name: 'Bash', input: {} }),
      event({ type: 'tool.ended', turnId: 't1', toolUseId: 'u1', output: 'x', isError: false }),
      event({ type: 'turn.ended', turnId: 't1', status: 'completed', usage: null, costUsd: null, durationMs: 5 }),
    ]);
    expect(said).toEqual(['Agent is working', 'Hello there', 'Running Bash', 'Turn finished']);
  });

  it('says a stopped turn is stopped, and an error once even when the turn’s end repeats it', () => {
    const announcer = new Announcer();
    expect(announcer.take([event({ type: 'turn.ended', turnId: 't1', status: 'interrupted', usage: null, costUsd: null, durationMs: 5 })])).toEqual(['Turn stopped']);
    const failure = { code: 'UPSTREAM_ERROR', message: 'the model answered 500' };
    expect(
      announcer.take([
        event({ type: 'error', turnId: 't2', ...failure }),
        event({ type: 'turn.ended', turnId: 't2', status: 'failed', usage: null, costUsd: null, durationMs: 5, error: failure }),
      ]),
    ).toEqual(['Error: the model answered 500', 'Turn failed']);
  });

  it('skips a finished message with nothing to say', () => {
    expect(new Announcer().take([event({ type: 'message.completed', turnId: 't1', messageId: 'm1', text: '  ' })])).toEqual([]);
  });
});

describe('spokenText', () => {
  it('drops code fences, heading hashes and emphasis marks', () => {
    expect(spokenText('# Title\n\nSome **bold** and `code`:\n\n```ts\nconst a = 1;\n```\n')).toBe('Title\n\nSome bold and code:\n\nconst a = 1;');
  });
});
