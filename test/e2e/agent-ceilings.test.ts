import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { removeDataDir } from '../support/data-dir.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { text } from '../support/scripted-model.ts';

const configured = { memoryMb: 4096, cpus: 4, turnTimeoutSeconds: 3600 };

describe('agent ceilings', () => {
  let dataDir: string;
  let test: TestPlatform;
  let admin: ApiClient;
  let alice: ApiClient;

  beforeAll(async () => {
    // Its own data directory: the last test restarts the platform on it.
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-ceilings-'));
    test = await startTestPlatform({ dataDir });
    admin = await test.api.registerWithToken('admin@example.com');
    alice = await test.api.registerWithToken('alice@example.com');
  });
  afterAll(async () => {
    await test?.close();
    await removeDataDir(dataDir);
  });

  const agent = (limits: Record<string, number>, name = 'limited') => ({ name, model: 'claude-sonnet-5', limits: { memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 60, ...limits } });

  it('refuses to create or update an agent over a default ceiling, with a 400 naming the limit', async () => {
    for (const [field, value, ceiling] of [['memoryMb', 65536, 4096], ['cpus', 64, 4], ['turnTimeoutSeconds', 86400, 3600]] as const) {
      const refused = await alice.request('POST', '/api/agents', agent({ [field]: value }));
      expect(refused.status, field).toBe(400);
      expect(refused.body.error).toMatchObject({ code: 'BAD_REQUEST', details: { field: `limits.${field}`, ceiling } });
      expect(refused.body.error.message).toContain(`limits.${field} is ${value}`);
      expect(refused.body.error.message).toContain(`ceiling of ${ceiling}`);
    }
    const atCeilings = await alice.request('POST', '/api/agents', agent(configured, 'at the ceilings'));
    expect(atCeilings.status).toBe(201);
    const over = await alice.request('PATCH', `/api/agents/${atCeilings.body.id}`, { limits: { cpus: 8 } });
    expect(over.status).toBe(400);
    expect(over.body.error.details).toEqual({ field: 'limits.cpus', ceiling: 4 });
    expect((await alice.request('GET', `/api/agents/${atCeilings.body.id}`)).body.limits).toEqual(configured);
    // Every user can read the ceilings the editor enforces.
    expect((await alice.request('GET', '/api/agent-limits')).body).toEqual({ ceilings: configured });
  });

  it('lets only administrators read and change the ceilings, validating them', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const refused = await alice.request(method, '/api/admin/agent-limits', method === 'PUT' ? configured : undefined);
      expect(refused.status, method).toBe(403);
      expect(refused.body.error.code).toBe('FORBIDDEN');
      expect((await test.api.request(method, '/api/admin/agent-limits', method === 'PUT' ? configured : undefined)).status, method).toBe(401);
    }
    expect((await admin.request('GET', '/api/admin/agent-limits')).body).toEqual({ ceilings: configured, defaults: configured, source: 'configuration' });
    expect((await admin.request('PUT', '/api/admin/agent-limits', { ...configured, memoryMb: 64 })).status).toBe(400);
    expect((await admin.request('PUT', '/api/admin/agent-limits', { memoryMb: 2048 })).status).toBe(400);
    expect((await admin.request('GET', '/api/admin/agent-limits')).body.source).toBe('configuration');
  });

  it('runs an agent saved before a ceiling was lowered at the new ceiling', async () => {
    const created = await alice.request('POST', '/api/agents', agent({ memoryMb: 2048, cpus: 2, turnTimeoutSeconds: 60 }, 'older'));
    expect(created.status).toBe(201);
    const lowered = { memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 5 };
    const changed = await admin.request('PUT', '/api/admin/agent-limits', lowered);
    expect(changed.status).toBe(200);
    expect(changed.body).toEqual({ ceilings: lowered, defaults: configured, source: 'administrator' });
    expect((await alice.request('GET', '/api/agent-limits')).body).toEqual({ ceilings: lowered });

    // The agent keeps its saved limits, may still be renamed, but not be given new ones over the ceiling.
    expect((await alice.request('GET', `/api/agents/${created.body.id}`)).body.limits).toEqual({ memoryMb: 2048, cpus: 2, turnTimeoutSeconds: 60 });
    expect((await alice.request('PATCH', `/api/agents/${created.body.id}`, { name: 'older, renamed' })).status).toBe(200);
    expect((await alice.request('PATCH', `/api/agents/${created.body.id}`, { limits: { turnTimeoutSeconds: 30 } })).body.error.details).toEqual({
      field: 'limits.turnTimeoutSeconds',
      ceiling: 5,
    });

    // Its turn stops at the 5 s ceiling, not at its own 60 s: the answer would take 15 s.
    test.model.setScript(() => text(Array.from({ length: 60 }, (_, index) => `part${index} `), { delayMs: 250 }));
    const { body: conversation } = await alice.request('POST', '/api/conversations', { agentId: created.body.id });
    const sent = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'talk for a while' });
    expect(sent.status).toBe(202);
    const events = await alice.readEvents(conversation.id, { until: untilTurnEnded(sent.body.turnId), timeoutMs: 60_000 });
    test.model.setScript(null);
    expect(events.at(-1)!.data).toMatchObject({ status: 'timed_out', error: { code: 'TIMEOUT' } });
    expect(events.at(-1)!.data.durationMs).toBeLessThan(13_000);
  });

  it('keeps the administrator’s ceilings across a restart, over the configured ones, until reset', async () => {
    await test.close();
    test = await startTestPlatform({ dataDir, env: { AGENTYARD_AGENT_MAX_MEMORY_MB: '3000' } });
    admin = new ApiClient(test.platform.url, admin.auth);
    const fromConfiguration = { ...configured, memoryMb: 3000 };
    expect((await admin.request('GET', '/api/admin/agent-limits')).body).toEqual({
      ceilings: { memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 5 },
      defaults: fromConfiguration,
      source: 'administrator',
    });
    const reset = await admin.request('DELETE', '/api/admin/agent-limits');
    expect(reset.body).toEqual({ ceilings: fromConfiguration, defaults: fromConfiguration, source: 'configuration' });
  });
});
