import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../core/ids.ts';
import type { Store } from '../core/store.ts';
import { createSqliteStore } from '../store/sqlite/index.ts';
import { PriceTable } from './price-table.ts';
import { usageCsv, UsageService } from './usage-service.ts';

let directory: string;
let store: Store;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'usage-'));
  store = createSqliteStore({ path: join(directory, 'store.db') });
  await store.migrate();
});

afterEach(async () => {
  await store.close();
  await rm(directory, { recursive: true, force: true });
});

const prices = new PriceTable({
  cheap: { input: 1, output: 2, cacheWrite: 0, cacheRead: 0 },
  dear: { input: 10, output: 20, cacheWrite: 0, cacheRead: 0 },
});

describe('UsageService', () => {
  it('reports totals and rows by day and agent, pricing each model, and CSV with the same rows', async () => {
    const user = await store.createUser({ id: 'usr_a', email: 'a@example.com', passwordHash: 'h', role: 'user' });
    const now = '2025-06-01T00:00:00.000Z';
    await store.createAgent({
      id: 'agt_1', ownerId: user.id, name: 'Writer, "the" one', description: '', instructions: '', model: 'm', allowedTools: [], disallowedTools: [],
      maxTurns: null, limits: { memoryMb: 512, cpus: 1, turnTimeoutSeconds: 60 }, egressDomains: [], sandboxRuntime: 'default', createdAt: now, updatedAt: now,
    });
    const add = (model: string, agentId: string | null, createdAt: string, inputTokens: number, outputTokens: number) =>
      store.recordUsage({ id: newId('use'), userId: user.id, conversationId: 'c', turnId: null, agentId, model, createdAt, usage: { inputTokens, outputTokens, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 } });
    await add('cheap', 'agt_1', '2025-06-03T10:00:00.000Z', 1_000_000, 0);
    await add('dear', 'agt_1', '2025-06-03T11:00:00.000Z', 0, 1_000_000);
    await add('cheap', null, '2025-06-04T10:00:00.000Z', 500_000, 500_000);
    await add('cheap', 'agt_1', '2025-07-01T00:00:00.000Z', 9, 9);

    const service = new UsageService(store, prices, () => new Date('2025-06-20T12:00:00.000Z'));
    const report = await service.report({ userId: user.id });

    expect(report).toEqual({
      from: '2025-06-01',
      to: '2025-06-20',
      userId: user.id,
      totals: { requests: 3, inputTokens: 1_500_000, outputTokens: 1_500_000, cacheCreationInputTokens: 0, cacheReadInputTokens: 0, totalTokens: 3_000_000, costUsd: 1 + 20 + 1.5 },
      rows: [
        { day: '2025-06-03', agentId: 'agt_1', agentName: 'Writer, "the" one', requests: 2, inputTokens: 1_000_000, outputTokens: 1_000_000, cacheCreationInputTokens: 0, cacheReadInputTokens: 0, totalTokens: 2_000_000, costUsd: 21 },
        { day: '2025-06-04', agentId: null, agentName: null, requests: 1, inputTokens: 500_000, outputTokens: 500_000, cacheCreationInputTokens: 0, cacheReadInputTokens: 0, totalTokens: 1_000_000, costUsd: 1.5 },
      ],
    });
    expect(usageCsv(report)).toBe(
      'day,agent_id,agent_name,requests,input_tokens,output_tokens,cache_write_tokens,cache_read_tokens,total_tokens,cost_usd\r\n' +
        '2025-06-03,agt_1,"Writer, ""the"" one",2,1000000,1000000,0,0,2000000,21.000000\r\n' +
        '2025-06-04,,,1,500000,500000,0,0,1000000,1.500000\r\n',
    );
    const july = await service.report({ userId: user.id, from: '2025-07-01', to: '2025-07-01' });
    expect(july.totals.requests).toBe(1);
  });

  it('refuses a malformed or reversed period', async () => {
    const service = new UsageService(store, prices);
    await expect(service.report({ userId: 'u', from: '2025-13-01' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(service.report({ userId: 'u', from: '2025-06-02', to: '2025-06-01' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('keeps spreadsheet formulas out of the CSV', () => {
    const csv = usageCsv({
      from: 'x', to: 'x', userId: 'u', totals: { requests: 0, inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0, totalTokens: 0, costUsd: 0 },
      rows: [{ day: '2025-06-01', agentId: 'a', agentName: '=HYPERLINK("x")', requests: 0, inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0, totalTokens: 0, costUsd: 0 }],
    });
    expect(csv).toContain(`"'=HYPERLINK(""x"")"`);
  });
});
