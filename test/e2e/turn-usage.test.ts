import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenUsage } from '../../src/core/types.ts';
import { createPriceTable } from '../../src/usage/price-table.ts';
import { type ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { streamError, text, toolUse } from '../support/scripted-model.ts';

describe('a turn reports what the gateway metered, whatever its outcome', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  beforeAll(async () => {
    test = await startTestPlatform();
    alice = await test.api.registerWithToken('alice@example.com');
  });
  afterAll(() => test?.close());

  /** The sum of the gateway's usage rows for the turn, and their cost with the platform's own prices. */
  const metered = async (conversationId: string, turnId: string): Promise<{ requests: number; usage: TokenUsage; costUsd: number }> => {
    const records = await test.platform.store.listUsage({ conversationId, turnId });
    const prices = createPriceTable(null);
    const usage = { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 };
    let costUsd = 0;
    for (const record of records) {
      for (const kind of Object.keys(usage) as Array<keyof TokenUsage>) usage[kind] += record.usage[kind];
      costUsd += prices.cost(record.model, record.usage);
    }
    return { requests: records.length, usage, costUsd };
  };

  it('reports the metered usage of a turn stopped after streaming text', async () => {
    test.model.setScript(() => text(Array.from({ length: 80 }, (_, index) => `part${index} `), { delayMs: 250 }));
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    const sent = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'talk for a while' });
    await alice.readEvents(conversation.id, { until: (events) => events.some((event) => event.event === 'message.delta') });
    await alice.request('POST', `/api/conversations/${conversation.id}/interrupt`);
    const events = await alice.readEvents(conversation.id, { until: untilTurnEnded(sent.body.turnId) });
    const ended = events.at(-1)!.data;
    expect(ended.status).toBe('interrupted');

    const expected = await metered(conversation.id, sent.body.turnId);
    expect(expected.requests).toBe(1);
    expect(expected.usage.inputTokens).toBeGreaterThan(0);
    expect(ended.usage).toEqual(expected.usage);
    expect(ended.costUsd).toBeGreaterThan(0);
    expect(ended.costUsd).toBeCloseTo(expected.costUsd, 10);
    // The turn as listed carries the same figures.
    const detail = await alice.request('GET', `/api/conversations/${conversation.id}`);
    expect(detail.body.turns.find((turn: { id: string }) => turn.id === sent.body.turnId)).toMatchObject({ usage: expected.usage });
  });

  it('reports the metered usage of a turn that failed after several model requests', async () => {
    // Two commands, then an answer cut off by an error mid-stream: the CLI counts only the two it completed, while
    // the model (and the gateway) counted the third as well.
    test.model.setScript((request) =>
      request.toolResults < 2 ? toolUse('Bash', { command: `echo step${request.toolResults}`, description: 'a step' }) : streamError({ text: 'I will now ' }),
    );
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    const sent = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'do two steps' });
    const events = await alice.readEvents(conversation.id, { until: untilTurnEnded(sent.body.turnId) });
    const ended = events.at(-1)!.data;
    expect(ended).toMatchObject({ status: 'failed', error: { code: 'UPSTREAM_ERROR' } });

    const expected = await metered(conversation.id, sent.body.turnId);
    expect(expected.requests).toBe(3);
    // The two whole answers are metered as the model reported them.
    const answered = test.model.requests.filter((request) => request.usage !== null && JSON.stringify(request.body).includes('do two steps'));
    expect(answered).toHaveLength(2);
    const records = await test.platform.store.listUsage({ conversationId: conversation.id, turnId: sent.body.turnId });
    expect(records.slice(0, 2).map((record) => record.usage.outputTokens)).toEqual(answered.map((request) => request.usage!.output_tokens));
    expect(ended.usage).toEqual(expected.usage);
    expect(ended.costUsd).toBeGreaterThan(0);
    expect(ended.costUsd).toBeCloseTo(expected.costUsd, 10);
  });
});
