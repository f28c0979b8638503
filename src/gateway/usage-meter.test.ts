import { describe, expect, it } from 'vitest';
import { createUsageMeter, PendingUsage, type MeteredUsage } from './usage-meter.ts';

function sse(events: Array<[string, unknown]>, lineEnd = '\n'): string {
  return events.map(([name, data]) => `event: ${name}${lineEnd}data: ${JSON.stringify(data)}${lineEnd}${lineEnd}`).join('');
}

function meter(contentType: string, body: string, chunkSize = body.length): MeteredUsage | null {
  const usageMeter = createUsageMeter(contentType);
  const bytes = Buffer.from(body);
  for (let offset = 0; offset < bytes.length; offset += chunkSize) usageMeter.push(bytes.subarray(offset, offset + chunkSize));
  return usageMeter.finish();
}

const stream = sse([
  ['message_start', { type: 'message_start', message: { model: 'claude-x', usage: { input_tokens: 120, output_tokens: 1, cache_creation_input_tokens: 30, cache_read_input_tokens: 40 } } }],
  ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'héllo "message_delta" ✓' } }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 15 } }],
  ['message_stop', { type: 'message_stop' }],
]);

describe('createUsageMeter', () => {
  it('reads input usage from message_start and the final output count from message_delta', () => {
    expect(meter('text/event-stream; charset=utf-8', stream)).toEqual({
      model: 'claude-x',
      usage: { inputTokens: 120, outputTokens: 15, cacheCreationInputTokens: 30, cacheReadInputTokens: 40 },
    });
  });

  it('gives the same answer however the stream is split into chunks', () => {
    const whole = meter('text/event-stream', stream);
    for (const size of [1, 2, 3, 7, 64]) expect(meter('text/event-stream', stream, size)).toEqual(whole);
  });

  it('treats message_delta counts as cumulative: the last value wins, including input counts', () => {
    const body = sse(
      [
        ['message_start', { type: 'message_start', message: { model: 'm', usage: { input_tokens: 10, output_tokens: 1 } } }],
        ['message_delta', { type: 'message_delta', delta: {}, usage: { output_tokens: 5 } }],
        ['message_delta', { type: 'message_delta', delta: {}, usage: { input_tokens: 12, output_tokens: 9, cache_read_input_tokens: 3 } }],
      ],
      '\r\n',
    );
    expect(meter('text/event-stream', body)?.usage).toEqual({
      inputTokens: 12,
      outputTokens: 9,
      cacheCreationInputTokens: 0,
      cacheReadInputTokens: 3,
    });
  });

  it('meters what a stream cut short had reported', () => {
    const cut = stream.slice(0, stream.indexOf('event: message_delta'));
    expect(meter('text/event-stream', cut)?.usage).toMatchObject({ inputTokens: 120, outputTokens: 1 });
  });

  it('reads usage and model from a JSON message', () => {
    const body = JSON.stringify({ type: 'message', model: 'claude-y', content: [], usage: { input_tokens: 3, output_tokens: 4 } });
    expect(meter('application/json', body, 5)).toEqual({
      model: 'claude-y',
      usage: { inputTokens: 3, outputTokens: 4, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
    });
  });

  it('reports nothing for errors, count_tokens answers and other content', () => {
    expect(meter('application/json', JSON.stringify({ type: 'error', error: { type: 'api_error', message: 'x' } }))).toBeNull();
    expect(meter('application/json', JSON.stringify({ input_tokens: 7 }))).toBeNull();
    expect(meter('application/json', 'not json')).toBeNull();
    expect(meter('text/plain', stream)).toBeNull();
    expect(meter('text/event-stream', sse([['error', { type: 'error', error: { type: 'overloaded_error' } }]]))).toBeNull();
  });
});

describe('PendingUsage', () => {
  it('settles a turn once every request it started is done and every hold on them is released', async () => {
    const pending = new PendingUsage();
    const first = pending.track('turn_1');
    const second = pending.track('turn_1');
    const other = pending.track('turn_2');
    let settled = false;
    const waiting = pending.settled('turn_1', 10_000).then((value) => {
      settled = value;
    });
    first.done();
    // The answer was cut off, but its usage is still being recorded.
    const recording = second.hold();
    second.done();
    second.done();
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    recording();
    await waiting;
    expect(settled).toBe(true);
    // Other turns are counted apart; a hold taken after the request finished keeps nothing pending.
    expect(await pending.settled('turn_2', 10)).toBe(false);
    other.done();
    other.hold()();
    expect(await pending.settled('turn_2', 10)).toBe(true);
  });

  it('answers false after the timeout when a request never ends, and at once for a turn with none', async () => {
    const pending = new PendingUsage();
    pending.track('turn_1');
    expect(await pending.settled('turn_1', 20)).toBe(false);
    expect(await pending.settled('turn_unknown', 10_000)).toBe(true);
    // Requests outside any turn are not tracked.
    pending.track(null).hold();
    expect(await pending.settled('turn_unknown', 10_000)).toBe(true);
  });
});
