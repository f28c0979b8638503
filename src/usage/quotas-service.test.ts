import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Store } from '../core/store.ts';
import type { QuotaLimits, UsageRecord } from '../core/types.ts';
import { createSqliteStore } from '../store/sqlite/index.ts';
import { PriceTable } from './price-table.ts';
import { QuotasService } from './quotas-service.ts';

const unlimited: QuotaLimits = {
  tokensPerDay: null,
  tokensPerMonth: null,
  costPerDayUsd: null,
  costPerMonthUsd: null,
  concurrentSandboxes: null,
  sandboxHoursPerMonth: null,
};
// $1 per million tokens of every kind: cost is tokens / 1e6.
const prices = new PriceTable({ '*': { input: 1, output: 1, cacheWrite: 1, cacheRead: 1 } });

let directory: string;
let store: Store;
let now: Date;
let userId: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'quotas-'));
  store = createSqliteStore({ path: join(directory, 'store.db') });
  await store.migrate();
  userId = (await store.createUser({ id: newId('usr'), email: `${newId('u')}@example.com`, passwordHash: 'h', role: 'user' })).id;
  now = new Date('2025-06-30T23:00:00.000Z');
});

afterEach(async () => {
  await store.close();
  await rm(directory, { recursive: true, force: true });
});

const service = (defaults: Partial<QuotaLimits> = {}): QuotasService =>
  new QuotasService({ store, prices, defaults: { ...unlimited, ...defaults }, now: () => now });

const record = (tokens: number, at: Date = now): UsageRecord => ({
  id: newId('use'),
  userId,
  conversationId: 'conv_1',
  turnId: null,
  agentId: null,
  model: 'm',
  usage: { inputTokens: tokens, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
  createdAt: at.toISOString(),
});

describe('QuotasService', () => {
  it('allows until the use reaches the limit, then names the quota and when it resets', async () => {
    const quotas = service({ tokensPerDay: 1000 });
    await quotas.record(record(999));
    expect(await quotas.checkModelRequest(userId)).toBeNull();
    await quotas.record(record(1));
    expect(await quotas.checkModelRequest(userId)).toEqual({
      quota: 'tokensPerDay',
      limit: 1000,
      used: 1000,
      resetsAt: '2025-07-01T00:00:00.000Z',
      message: 'the daily token quota (1000 tokens) is used up (used: 1000); it resets at 2025-07-01T00:00:00.000Z',
    });
    const error = await quotas.assertCanStartTurn(userId, { needsSandbox: true }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota: 'tokensPerDay', limit: 1000, used: 1000, resetsAt: '2025-07-01T00:00:00.000Z', retryAfterSeconds: 3600 } });
  });

  it('counts what was used before it started, from the store, and starts afresh with each day and month', async () => {
    await store.recordUsage(record(600, new Date('2025-06-30T01:00:00.000Z')));
    await store.recordUsage(record(300, new Date('2025-06-02T01:00:00.000Z')));
    await store.recordUsage(record(5000, new Date('2025-05-31T23:59:59.000Z')));
    const quotas = service({ tokensPerDay: 700, tokensPerMonth: 1000 });
    const used = async () => Object.fromEntries((await quotas.status(userId)).map((state) => [state.quota, state.used]));

    expect(await used()).toMatchObject({ tokensPerDay: 600, tokensPerMonth: 900 });
    await quotas.record(record(100));
    expect((await quotas.checkModelRequest(userId))?.quota).toBe('tokensPerMonth');

    now = new Date('2025-07-01T00:00:01.000Z');
    expect(await used()).toMatchObject({ tokensPerDay: 0, tokensPerMonth: 0 });
    expect(await quotas.checkModelRequest(userId)).toBeNull();
  });

  it('names the quota that frees up last when several are used up', async () => {
    const quotas = service({ tokensPerDay: 10, costPerMonthUsd: 0.00001 });
    await quotas.record(record(20));
    expect((await quotas.checkModelRequest(userId))?.quota).toBe('costPerMonthUsd');
  });

  it('prices usage for cost quotas with the price table', async () => {
    const quotas = service({ costPerDayUsd: 0.5 });
    await quotas.record(record(499_999));
    expect(await quotas.checkModelRequest(userId)).toBeNull();
    await quotas.record(record(1));
    expect(await quotas.checkModelRequest(userId)).toMatchObject({ quota: 'costPerDayUsd', used: 0.5, limit: 0.5 });
  });

  it('applies an override at once, key by key, and removing it restores the default', async () => {
    const quotas = service({ tokensPerDay: 100, tokensPerMonth: 100 });
    await quotas.record(record(150));
    expect((await quotas.checkModelRequest(userId))?.quota).toBe('tokensPerMonth');
    await quotas.setOverride(userId, { tokensPerMonth: null, tokensPerDay: 200 });
    expect(await quotas.limits(userId)).toMatchObject({ tokensPerDay: 200, tokensPerMonth: null });
    expect(await quotas.checkModelRequest(userId)).toBeNull();
    await quotas.deleteOverride(userId);
    expect((await quotas.checkModelRequest(userId))?.quota).toBe('tokensPerMonth');
  });

  it('counts running sandboxes against the concurrent quota only for turns that need a new one', async () => {
    const quotas = service({ concurrentSandboxes: 1 });
    const session = await quotas.startSandbox(userId, 'conv_1');
    expect(await quotas.checkTurn(userId, { needsSandbox: false })).toBeNull();
    expect(await quotas.checkTurn(userId, { needsSandbox: true })).toMatchObject({ quota: 'concurrentSandboxes', limit: 1, used: 1, resetsAt: null });
    await expect(quotas.startSandbox(userId, 'conv_2')).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
    await quotas.sandboxStopped(session);
    expect(await quotas.checkTurn(userId, { needsSandbox: true })).toBeNull();
  });

  it('adds up sandbox hours this month, running sandboxes included, and remembers them across restarts', async () => {
    now = new Date('2025-06-15T10:00:00.000Z');
    const quotas = service({ sandboxHoursPerMonth: 1 });
    const first = await quotas.startSandbox(userId, 'conv_1');
    now = new Date(now.getTime() + 30 * 60_000);
    await quotas.sandboxStopped(first);
    await quotas.startSandbox(userId, 'conv_2');
    now = new Date(now.getTime() + 20 * 60_000);
    expect((await quotas.status(userId)).find((state) => state.quota === 'sandboxHoursPerMonth')?.used).toBeCloseTo(50 / 60, 3);
    expect(await quotas.checkModelRequest(userId)).toBeNull();
    now = new Date(now.getTime() + 10 * 60_000);
    expect(await quotas.checkModelRequest(userId)).toMatchObject({ quota: 'sandboxHoursPerMonth' });

    // A new process: the open session was left by a crash and is ended at start-up.
    const restarted = service({ sandboxHoursPerMonth: 2 });
    await restarted.recover();
    expect((await restarted.status(userId)).find((state) => state.quota === 'sandboxHoursPerMonth')?.used).toBeCloseTo(1, 3);
    expect((await restarted.status(userId)).find((state) => state.quota === 'concurrentSandboxes')?.used).toBe(0);
  });

  it('counts every record once when usage arrives while the ledger loads', async () => {
    await store.recordUsage(record(10));
    const quotas = service({ tokensPerDay: 1_000_000 });
    await Promise.all([quotas.status(userId), quotas.record(record(20)), quotas.record(record(30)), quotas.status(userId), quotas.record(record(40))]);
    expect((await quotas.status(userId)).find((state) => state.quota === 'tokensPerDay')?.used).toBe(100);
  });
});

describe('QuotasService on replicas sharing a store', () => {
  const replica = (replicaId: string, defaults: Partial<QuotaLimits> = {}): QuotasService =>
    new QuotasService({ store, prices, defaults: { ...unlimited, ...defaults }, now: () => now, replicaId, replicaStaleMs: 15_000 });

  it("sees the usage another replica recorded and an override another replica set, at the next check", async () => {
    const first = replica('r1', { tokensPerDay: 100 });
    const second = replica('r2', { tokensPerDay: 100 });
    await first.record(record(60));
    expect(await second.checkModelRequest(userId)).toBeNull();
    await second.record(record(40));
    expect(await first.checkModelRequest(userId)).toMatchObject({ quota: 'tokensPerDay', used: 100 });
    expect(await second.checkModelRequest(userId)).toMatchObject({ quota: 'tokensPerDay', used: 100 });

    await first.setOverride(userId, { tokensPerDay: 1000 });
    expect(await second.checkModelRequest(userId)).toBeNull();
    expect((await second.status(userId)).find((state) => state.quota === 'tokensPerDay')).toMatchObject({ limit: 1000, used: 100 });
    await second.deleteOverride(userId);
    expect(await first.checkModelRequest(userId)).toMatchObject({ quota: 'tokensPerDay' });
  });

  it('starts at most the concurrent-sandbox quota of sandboxes, whichever replicas start them, refusing the rest', async () => {
    for (const id of ['r1', 'r2', 'r3']) await store.registerReplica({ id, version: '0', url: null, hostname: 'h', pid: 1, startedAt: now.toISOString() });
    const replicas = [replica('r1', { concurrentSandboxes: 2 }), replica('r2', { concurrentSandboxes: 2 }), replica('r3', { concurrentSandboxes: 2 })];
    const results = await Promise.allSettled(Array.from({ length: 9 }, (_, index) => replicas[index % 3]!.startSandbox(userId, `conv_${index}`)));
    const started = results.filter((result): result is PromiseFulfilledResult<string> => result.status === 'fulfilled').map((result) => result.value);
    expect(started).toHaveLength(2);
    for (const result of results) {
      if (result.status === 'rejected') {
        expect(result.reason).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota: 'concurrentSandboxes', limit: 2, used: 2, resetsAt: null } });
      }
    }
    await replicas[2]!.sandboxStopped(started[0]!);
    await expect(replicas[1]!.startSandbox(userId, 'conv_next')).resolves.toMatch(/^sbs_/);
    await expect(replicas[0]!.startSandbox(userId, 'conv_over')).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
  });

  it('refuses a sandbox over the sandbox-hours quota before counting it', async () => {
    now = new Date('2025-06-15T10:00:00.000Z');
    const first = replica('r1', { sandboxHoursPerMonth: 0.5 });
    const session = await first.startSandbox(userId, 'conv_1');
    now = new Date(now.getTime() + 30 * 60_000);
    await first.sandboxStopped(session);
    await expect(replica('r2', { sandboxHoursPerMonth: 0.5 }).startSandbox(userId, 'conv_2')).rejects.toMatchObject({
      code: 'QUOTA_EXCEEDED',
      details: { quota: 'sandboxHoursPerMonth', used: 0.5 },
    });
    expect((await store.listSandboxSessions(userId, '2025-06-01T00:00:00.000Z', '2025-07-01T00:00:00.000Z')).map((item) => item.id)).toEqual([session]);
  });

  it('ends the sessions of a replica that stopped when they would refuse a sandbox, counting them until its last heartbeat', async () => {
    now = new Date('2025-06-15T10:00:00.000Z');
    await store.registerReplica({ id: 'r1', version: '0', url: null, hostname: 'h', pid: 1, startedAt: now.toISOString() });
    await store.registerReplica({ id: 'r2', version: '0', url: null, hostname: 'h', pid: 2, startedAt: now.toISOString() });
    const first = replica('r1', { concurrentSandboxes: 1 });
    const second = replica('r2', { concurrentSandboxes: 1 });
    await first.startSandbox(userId, 'conv_1');
    // r1 is last heard of ten minutes in, then nothing: it stopped.
    await store.heartbeatReplica('r1', new Date(now.getTime() + 10 * 60_000).toISOString(), false);
    now = new Date(now.getTime() + 10 * 60_000 + 5_000);
    await store.heartbeatReplica('r2', now.toISOString(), false);
    // Not yet: r1 was heard of 5 s ago.
    await expect(second.startSandbox(userId, 'conv_2')).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
    now = new Date(now.getTime() + 60_000);
    await store.heartbeatReplica('r2', now.toISOString(), false);
    await expect(second.startSandbox(userId, 'conv_2')).resolves.toMatch(/^sbs_/);
    const status = Object.fromEntries((await second.status(userId)).map((state) => [state.quota, state.used]));
    // r1's sandbox counted for its ten minutes; r2's for the moment it has run.
    expect(status).toMatchObject({ concurrentSandboxes: 1, sandboxHoursPerMonth: Math.round((10 / 60) * 10_000) / 10_000 });
  });

  it("at start-up ends only the replica's own sessions left open, and those of replicas that stopped", async () => {
    now = new Date('2025-06-15T10:00:00.000Z');
    await store.registerReplica({ id: 'r2', version: '0', url: null, hostname: 'h', pid: 2, startedAt: now.toISOString() });
    await replica('r1').startSandbox(userId, 'conv_1');
    await replica('r2').startSandbox(userId, 'conv_2');
    await replica('r3').startSandbox(userId, 'conv_3');
    await store.registerReplica({ id: 'r3', version: '0', url: null, hostname: 'h', pid: 3, startedAt: now.toISOString() });
    // r1 restarts (its row is new); r2 is live; r3 was never heard of again after starting.
    now = new Date(now.getTime() + 60_000);
    await store.registerReplica({ id: 'r1', version: '0', url: null, hostname: 'h', pid: 4, startedAt: now.toISOString() });
    await store.heartbeatReplica('r2', now.toISOString(), false);
    await replica('r1').recover();
    const sessions = await store.listSandboxSessions(userId, '2025-06-01T00:00:00.000Z', '2025-07-01T00:00:00.000Z');
    expect(Object.fromEntries(sessions.map((session) => [session.conversationId, session.endedAt]))).toEqual({
      conv_1: now.toISOString(),
      conv_2: null,
      conv_3: '2025-06-15T10:00:00.000Z',
    });
  });
});

describe('QuotasService while the store is unavailable', () => {
  it('answers as the last check of the same kind that could read the store did, and fails without one', async () => {
    let away = false;
    // The real store, made to fail as an unreachable database does while `away`.
    const flaky = new Proxy(store, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (away) return Promise.reject(new AppError('STORE_UNAVAILABLE', 'the database is unavailable right now; try again shortly'));
          return (value as (...inner: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const quotas = new QuotasService({ store: flaky, prices, defaults: { ...unlimited, tokensPerDay: 100 }, now: () => now });
    expect(await quotas.checkModelRequest(userId)).toBeNull();
    away = true;
    expect(await quotas.checkModelRequest(userId)).toBeNull();
    await expect(quotas.checkTurn(userId, { needsSandbox: true })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    away = false;
    await quotas.record(record(100));
    expect(await quotas.checkModelRequest(userId)).toMatchObject({ quota: 'tokensPerDay', used: 100 });
    away = true;
    expect(await quotas.checkModelRequest(userId)).toMatchObject({ quota: 'tokensPerDay', used: 100 });
    // Past the reset of the quota it named, the last refusal no longer holds.
    now = new Date('2025-07-01T00:00:00.000Z');
    expect(await quotas.checkModelRequest(userId)).toBeNull();
  });
});
