import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenUsage } from '../../src/core/types.ts';
import { createPriceTable } from '../../src/usage/price-table.ts';
import { type ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import type { ModelUsage, Reply } from '../support/scripted-model.ts';

const toTokenUsage = (usage: ModelUsage): TokenUsage => ({
  inputTokens: usage.input_tokens,
  outputTokens: usage.output_tokens,
  cacheCreationInputTokens: usage.cache_creation_input_tokens,
  cacheReadInputTokens: usage.cache_read_input_tokens,
});

describe('metering through the gateway', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let bob: ApiClient;
  let aliceId: string;
  let bobId: string;

  beforeAll(async () => {
    test = await startTestPlatform();
    alice = await test.api.registerWithToken('alice@example.com');
    bob = await test.api.registerWithToken('bob@example.com');
    aliceId = (await alice.request('GET', '/api/auth/me')).body.user.id;
    bobId = (await bob.request('GET', '/api/auth/me')).body.user.id;
    // The default scenarios, with every kind of token reported and different for each request.
    test.model.setScript((request, context) => {
      const reply = context.defaultScript(request, context) as Reply;
      if (reply.kind !== 'text' && reply.kind !== 'tool_use') return reply;
      return { ...reply, options: { ...reply.options, usage: { cache_creation_input_tokens: 100 + context.index, cache_read_input_tokens: 1000 * (context.index + 1) } } };
    });
  });
  afterAll(() => test?.close());

  it('records exactly what the model reported for every request of a tool-using turn, attributed to user, agent, conversation and turn', async () => {
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    const sent = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'SCN_TOOLS WRITE<<note.txt|metered>>' });
    const events = await alice.readEvents(conversation.id, { until: untilTurnEnded(sent.body.turnId) });
    expect(events.at(-1)!.data.status).toBe('completed');

    const answered = test.model.requests.filter((request) => request.path.startsWith('/v1/messages?') && request.usage !== null);
    expect(answered).toHaveLength(3);
    await expect.poll(async () => (await test.platform.store.listUsage({ conversationId: conversation.id })).length).toBe(3);
    const records = await test.platform.store.listUsage({ conversationId: conversation.id });
    expect(records.map((record) => ({ ...record, id: 'x', createdAt: 'x' }))).toEqual(
      answered.map((request) => ({
        id: 'x',
        createdAt: 'x',
        userId: aliceId,
        conversationId: conversation.id,
        turnId: sent.body.turnId,
        agentId: 'agt_default',
        model: 'claude-sonnet-5',
        usage: toTokenUsage(request.usage!),
      })),
    );

    const sum = (kind: keyof ModelUsage): number => answered.reduce((total, request) => total + request.usage![kind], 0);
    const expected = {
      requests: 3,
      inputTokens: sum('input_tokens'),
      outputTokens: sum('output_tokens'),
      cacheCreationInputTokens: sum('cache_creation_input_tokens'),
      cacheReadInputTokens: sum('cache_read_input_tokens'),
    };
    expect(expected.cacheReadInputTokens).toBeGreaterThan(0);
    const prices = createPriceTable(null);
    const cost = answered.reduce((total, request) => total + prices.cost('claude-sonnet-5', toTokenUsage(request.usage!)), 0);
    const totalTokens = expected.inputTokens + expected.outputTokens + expected.cacheCreationInputTokens + expected.cacheReadInputTokens;

    const usage = await alice.request('GET', '/api/usage');
    expect(usage.status).toBe(200);
    const today = new Date().toISOString().slice(0, 10);
    expect(usage.body).toMatchObject({ userId: aliceId, to: today, totals: { ...expected, totalTokens } });
    expect(usage.body.totals.costUsd).toBeCloseTo(cost, 6);
    expect(usage.body.rows).toEqual([{ day: today, agentId: 'agt_default', agentName: 'Claude Code', ...expected, totalTokens, costUsd: usage.body.totals.costUsd }]);

    const csv = await alice.request('GET', '/api/usage?format=csv');
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect(String(csv.body).trim().split('\r\n')).toEqual([
      'day,agent_id,agent_name,requests,input_tokens,output_tokens,cache_write_tokens,cache_read_tokens,total_tokens,cost_usd',
      [today, 'agt_default', 'Claude Code', 3, expected.inputTokens, expected.outputTokens, expected.cacheCreationInputTokens, expected.cacheReadInputTokens, totalTokens, usage.body.totals.costUsd.toFixed(6)].join(','),
    ]);
  });

  it('shows a user only their own usage, and an administrator everyone’s', async () => {
    const own = await bob.request('GET', '/api/usage');
    expect(own.body).toMatchObject({ userId: bobId, totals: { requests: 0 }, rows: [] });
    expect((await bob.request('GET', `/api/usage?userId=${aliceId}`)).status).toBe(403);
    expect((await bob.request('GET', '/api/admin/usage')).status).toBe(403);

    // alice registered first, so she is the administrator.
    const bobSeenByAdmin = await alice.request('GET', `/api/usage?userId=${bobId}`);
    expect(bobSeenByAdmin.body).toMatchObject({ userId: bobId, totals: { requests: 0 } });
    expect((await alice.request('GET', '/api/usage?userId=usr_nobody')).status).toBe(404);
    const everyone = await alice.request('GET', '/api/admin/usage');
    expect(everyone.status).toBe(200);
    expect(everyone.body.userId).toBeNull();
    expect(everyone.body.users).toEqual([expect.objectContaining({ userId: aliceId, email: 'alice@example.com', requests: 3 })]);
    expect(everyone.body.rows).toEqual([expect.objectContaining({ userId: aliceId, agentId: 'agt_default', requests: 3 })]);
    const everyoneCsv = await alice.request('GET', '/api/admin/usage?format=csv');
    expect(String(everyoneCsv.body).split('\r\n')[0]).toBe(
      'day,user_id,agent_id,agent_name,requests,input_tokens,output_tokens,cache_write_tokens,cache_read_tokens,total_tokens,cost_usd',
    );
    expect((await alice.request('GET', '/api/usage?from=2025-02-30')).status).toBe(400);
  });
});
