import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiClient, type StreamedEvent, untilTurnEnded } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

describe('quotas', () => {
  let test: TestPlatform;
  let admin: ApiClient;
  let bob: ApiClient;
  let bobId: string;
  /** The first test's conversation, whose sandbox keeps running (sandboxes idle for minutes before stopping). */
  let live: string;

  beforeAll(async () => {
    test = await startTestPlatform();
    admin = await test.api.registerWithToken('admin@example.com');
    bob = await test.api.registerWithToken('bob@example.com');
    bobId = (await bob.request('GET', '/api/auth/me')).body.user.id;
  });
  afterAll(() => test?.close());

  const setQuota = async (limits: Record<string, number | null>): Promise<void> => {
    const response = await admin.request('PUT', `/api/admin/quotas/${bobId}`, limits);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
  };
  const send = (conversationId: string, text: string) => bob.request('POST', `/api/conversations/${conversationId}/messages`, { text });
  const nextMidnight = (): string => {
    const now = new Date();
    return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString();
  };

  it('ends the turn whose model request crosses the quota with a clear event, refuses the next message naming it, and goes on once raised', async () => {
    // One model request of the CLI is far more than 1000 tokens: the first is served, the second crosses the quota.
    await setQuota({ tokensPerDay: 1000 });
    const { body: conversation } = await bob.request('POST', '/api/conversations', { title: 'quota' });
    live = conversation.id;
    const sent = await send(conversation.id, 'SCN_TOOLS BASH<<echo ran > ran.txt>>');
    expect(sent.status).toBe(202);
    const first = await bob.readEvents(conversation.id, { until: untilTurnEnded(sent.body.turnId), timeoutMs: 60_000 });

    const errorEvent = first.find((event) => event.event === 'error');
    expect(errorEvent?.data).toMatchObject({ turnId: sent.body.turnId, code: 'QUOTA_EXCEEDED' });
    expect(errorEvent?.data.message).toContain('daily token quota (1000 tokens)');
    expect(first.at(-1)!.data).toMatchObject({ status: 'failed', error: { code: 'QUOTA_EXCEEDED' } });
    // The tool the first request asked for did run; the request after it never reached the model.
    expect(first.filter((event) => event.event.startsWith('tool.')).map((event) => event.event)).toEqual(['tool.started', 'tool.ended']);
    const reachedModel = test.model.requests.filter((request) => request.path.startsWith('/v1/messages?') && JSON.stringify(request.body).includes('echo ran'));
    expect(reachedModel).toHaveLength(1);

    const refused = await send(conversation.id, 'may I go on?');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      details: { quota: 'tokensPerDay', limit: 1000, resetsAt: nextMidnight() },
    });
    expect(refused.body.error.details.used).toBeGreaterThanOrEqual(1000);
    expect(refused.body.error.message).toContain(`resets at ${nextMidnight()}`);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const quota = await bob.request('GET', '/api/quota');
    expect(quota.body.quotas.find((state: { quota: string }) => state.quota === 'tokensPerDay')).toMatchObject({ limit: 1000, resetsAt: nextMidnight() });

    await setQuota({ tokensPerDay: 100_000_000 });
    const resumed = await send(conversation.id, 'carry on');
    expect(resumed.status).toBe(202);
    const after = await bob.readEvents(conversation.id, { after: first.at(-1)!.id!, until: untilTurnEnded(resumed.body.turnId), timeoutMs: 60_000 });
    expect(after.at(-1)!.data.status).toBe('completed');

    // Nothing was lost: every event in order with no gap, each turn whole, and the refused message never stored.
    const all: StreamedEvent[] = await bob.readEvents(conversation.id, { until: untilTurnEnded(resumed.body.turnId) });
    expect(all.map((event) => event.id)).toEqual(all.map((_, index) => index + 1));
    for (const turnId of [sent.body.turnId, resumed.body.turnId]) {
      const types = all.filter((event) => event.data.turnId === turnId).map((event) => event.event);
      expect(types.slice(0, 2)).toEqual(['turn.queued', 'turn.started']);
      expect(types.at(-1)).toBe('turn.ended');
    }
    const detail = await bob.request('GET', `/api/conversations/${conversation.id}`);
    expect(detail.body.turns.map((turn: { status: string }) => turn.status)).toEqual(['failed', 'completed']);
    expect(detail.body.messages.filter((message: { role: string }) => message.role === 'user').map((message: { text: string }) => message.text)).toEqual([
      'SCN_TOOLS BASH<<echo ran > ran.txt>>',
      'carry on',
    ]);
    // The usage of the request that crossed the quota is kept.
    expect((await bob.request('GET', '/api/usage')).body.totals.requests).toBe(2);
  });

  it('refuses a turn that would start one sandbox too many, but not one in a conversation whose sandbox runs', async () => {
    await setQuota({ concurrentSandboxes: 1 });
    const { body: another } = await bob.request('POST', '/api/conversations', {});

    const refused = await send(another.id, 'hello from another conversation');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota: 'concurrentSandboxes', limit: 1, resetsAt: null } });
    expect(refused.headers.get('retry-after')).toBeNull();
    const same = await send(live, 'still fine here');
    expect(same.status).toBe(202);
    const events = await bob.readEvents(live, { until: untilTurnEnded(same.body.turnId) });
    expect(events.at(-1)!.data.status).toBe('completed');
  });

  it('refuses new turns once the month’s sandbox hours are used', async () => {
    // 0.36 seconds: the sandbox still running has used that.
    await setQuota({ sandboxHoursPerMonth: 0.0001 });
    const { body: conversation } = await bob.request('POST', '/api/conversations', {});
    const refused = await send(conversation.id, 'hello');
    expect(refused.status).toBe(429);
    expect(refused.body.error.details).toMatchObject({ quota: 'sandboxHoursPerMonth', limit: 0.0001 });
    const status = await admin.request('GET', `/api/admin/quotas/${bobId}`);
    expect(status.body).toMatchObject({ userId: bobId, override: { sandboxHoursPerMonth: 0.0001 }, limits: { sandboxHoursPerMonth: 0.0001, tokensPerDay: null } });
    expect(status.body.quotas.find((state: { quota: string }) => state.quota === 'concurrentSandboxes').used).toBe(1);
  });

  it('lets only administrators read and change quotas, validating the limits', async () => {
    expect((await bob.request('PUT', `/api/admin/quotas/${bobId}`, { tokensPerDay: null })).status).toBe(403);
    expect((await bob.request('GET', '/api/admin/quotas')).status).toBe(403);
    expect((await admin.request('PUT', `/api/admin/quotas/${bobId}`, { tokensPerDay: -1 })).status).toBe(400);
    expect((await admin.request('PUT', `/api/admin/quotas/${bobId}`, { tokensPerWeek: 5 })).status).toBe(400);
    expect((await admin.request('PUT', '/api/admin/quotas/usr_nobody', {})).status).toBe(404);
    const listed = await admin.request('GET', '/api/admin/quotas');
    expect(listed.body.default).toEqual({ tokensPerDay: null, tokensPerMonth: null, costPerDayUsd: null, costPerMonthUsd: null, concurrentSandboxes: null, sandboxHoursPerMonth: null });
    expect(listed.body.overrides).toEqual([expect.objectContaining({ userId: bobId })]);
    expect((await admin.request('DELETE', `/api/admin/quotas/${bobId}`)).status).toBe(204);
    expect((await admin.request('DELETE', `/api/admin/quotas/${bobId}`)).status).toBe(404);
    const { body: conversation } = await bob.request('POST', '/api/conversations', {});
    expect((await send(conversation.id, 'back to the default: unlimited')).status).toBe(202);
  });
});

describe('quota defaults from configuration', () => {
  it('applies the configured default to every user without an override', async () => {
    const test = await startTestPlatform({ env: { AGENTYARD_QUOTA_TOKENS_PER_MONTH: '0' } });
    try {
      const carol = await test.api.registerWithToken('carol@example.com');
      const { body: conversation } = await carol.request('POST', '/api/conversations', {});
      const refused = await carol.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'hi' });
      expect(refused.status).toBe(429);
      expect(refused.body.error.details).toMatchObject({ quota: 'tokensPerMonth', limit: 0 });
    } finally {
      await test.close();
    }
  });
});
