import { describe, expect, it } from 'vitest';
import { EventMapper, type MappedLine } from './event-mapper.ts';

const result = (extra: Record<string, unknown> = {}) => ({
  type: 'result',
  subtype: 'success',
  is_error: false,
  result: 'done',
  session_id: 'session-1',
  usage: { input_tokens: 10, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  ...extra,
});

const resultOf = (mapped: MappedLine) => {
  if (mapped.kind !== 'result') throw new Error(`expected a result, got ${mapped.kind}`);
  return mapped.result;
};

describe('EventMapper', () => {
  it('maps text deltas, assistant messages, tool starts and tool results to platform events', () => {
    const mapper = new EventMapper();
    mapper.beginTurn('turn_1');
    expect(mapper.map({ type: 'system', subtype: 'init', session_id: 'session-1' })).toEqual({ kind: 'session', sessionId: 'session-1' });
    expect(mapper.map({ type: 'stream_event', event: { type: 'message_start', message: { id: 'msg_1' } } })).toEqual({ kind: 'ignored' });
    expect(mapper.map({ type: 'stream_event', event: { type: 'content_block_delta', delta: { type: 'text_delta', text: 'Hel' } } })).toEqual({
      kind: 'events',
      events: [{ type: 'message.delta', turnId: 'turn_1', messageId: 'msg_1', text: 'Hel' }],
    });
    expect(mapper.map({ type: 'assistant', message: { id: 'msg_1', model: 'm', content: [{ type: 'tool_use', id: 'tool_1', name: 'Bash', input: { command: 'ls' } }] } })).toEqual({
      kind: 'events',
      events: [{ type: 'tool.started', turnId: 'turn_1', toolUseId: 'tool_1', name: 'Bash', input: { command: 'ls' } }],
    });
    expect(
      mapper.map({ type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: 'tool_1', content: [{ type: 'text', text: 'a\n' }], is_error: true }] } }),
    ).toEqual({ kind: 'events', events: [{ type: 'tool.ended', turnId: 'turn_1', toolUseId: 'tool_1', output: 'a\n', isError: true }] });
    // An API error's synthetic message is reported by the result, not as assistant text.
    expect(mapper.map({ type: 'assistant', message: { id: 'x', model: '<synthetic>', content: [{ type: 'text', text: 'API Error' }] } })).toEqual({ kind: 'ignored' });
    expect(mapper.map({ type: 'keep_alive' })).toEqual({ kind: 'ignored' });
    expect(mapper.map('not an object')).toEqual({ kind: 'ignored' });
  });

  it('tracks, per turn, whether the model answered and its last assistant message', () => {
    const mapper = new EventMapper();
    mapper.beginTurn('turn_1');
    expect(mapper.progress).toEqual({ answered: false, lastAssistantUuid: null });
    // An API error's synthetic message is no answer and no point to resume at.
    mapper.map({ type: 'assistant', uuid: 'uuid-synthetic', message: { id: 'x', model: '<synthetic>', content: [{ type: 'text', text: 'API Error' }] } });
    expect(mapper.progress).toEqual({ answered: false, lastAssistantUuid: null });
    mapper.map({ type: 'stream_event', event: { type: 'content_block_delta', delta: { type: 'text_delta', text: 'Hel' } } });
    expect(mapper.progress).toEqual({ answered: true, lastAssistantUuid: null });
    mapper.map({ type: 'assistant', uuid: 'uuid-text', message: { id: 'msg_1', model: 'm', content: [{ type: 'text', text: 'Hello' }] } });
    mapper.map({ type: 'assistant', uuid: 'uuid-tool', message: { id: 'msg_1', model: 'm', content: [{ type: 'tool_use', id: 'tool_1', name: 'Bash', input: {} }] } });
    expect(mapper.progress).toEqual({ answered: true, lastAssistantUuid: 'uuid-tool' });

    mapper.beginTurn('turn_2');
    expect(mapper.progress).toEqual({ answered: false, lastAssistantUuid: null });
    // A tool call without any text is an answer too.
    mapper.map({ type: 'assistant', uuid: 'uuid-tool-2', message: { id: 'msg_2', model: 'm', content: [{ type: 'tool_use', id: 'tool_2', name: 'Bash', input: {} }] } });
    expect(mapper.progress).toEqual({ answered: true, lastAssistantUuid: 'uuid-tool-2' });
  });

  it('carries an API failure’s status and text', () => {
    const mapper = new EventMapper();
    const failed = resultOf(mapper.map(result({ is_error: true, api_error_status: 429, result: 'API Error: Request rejected (429)', terminal_reason: 'api_error' })));
    expect(failed).toMatchObject({ isError: true, apiErrorStatus: 429, text: 'API Error: Request rejected (429)', terminalReason: 'api_error' });
  });
});
