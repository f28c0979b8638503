import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors.ts';
import { migrations } from '../migrations/index.ts';
import { describeStoreContract } from '../store.contract.ts';
import { createSqliteStore } from './index.ts';

let directory: string;
let count = 0;
const nextPath = (): string => join(directory, `store-${(count += 1)}.db`);

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'agentyard-sqlite-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describeStoreContract('sqlite', async () => createSqliteStore({ path: nextPath() }));

describe('SqliteStore', () => {
  it('opens nothing until first use', async () => {
    const path = join(directory, 'lazy', 'store.db');
    const store = createSqliteStore({ path });
    expect(store.kind).toBe('sqlite');
    expect(existsSync(path)).toBe(false);
    await store.migrate();
    expect(existsSync(path)).toBe(true);
    await store.close();
  });

  it('uses write-ahead logging and creates every table', async () => {
    const path = nextPath();
    const store = createSqliteStore({ path });
    await store.migrate();
    await store.close();
    const database = new Database(path);
    try {
      expect(database.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = database
        .prepare("select name from sqlite_master where type = 'table' and name not like 'kysely%' order by name")
        .pluck()
        .all();
      expect(tables).toEqual([
        'agents',
        'api_tokens',
        'conversation_leases',
        'conversations',
        'egress_log',
        'events',
        'gateway_grants',
        'invites',
        'lease_history',
        'platform_settings',
        'quota_overrides',
        'rate_limit_windows',
        'replica_tasks',
        'replicas',
        'sandbox_sessions',
        'sessions',
        'turns',
        'usage_records',
        'usage_totals',
        'user_credentials',
        'users',
      ]);
    } finally {
      database.close();
    }
  });

  it('keeps data across reopening the file', async () => {
    const path = nextPath();
    const first = createSqliteStore({ path });
    await first.migrate();
    await first.createUser({ id: 'usr_1', email: 'a@example.com', passwordHash: 'h', role: 'admin' });
    await first.close();
    const second = createSqliteStore({ path });
    await second.migrate();
    expect((await second.getUser('usr_1'))?.email).toBe('a@example.com');
    await second.close();
  });

  it('upgrades a database of the first release: agents get no egress, usage gets its agent and daily totals', async () => {
    const path = nextPath();
    const database = new Database(path);
    const kysely = new Kysely<unknown>({ dialect: new SqliteDialect({ database }) });
    const migrator = new Migrator({ db: kysely, provider: { getMigrations: async () => ({ '0001-initial-schema': migrations['0001-initial-schema']! }) } });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const at = '2025-06-01T00:00:00.000Z';
    database.prepare("insert into users values ('usr_1', 'a@example.com', 'a@example.com', 'h', 'user', 0, ?)").run(at);
    database
      .prepare("insert into agents values ('agt_1', 'usr_1', 'A', '', '', 'm', '[]', '[]', null, 512, 1, 60, ?, ?)")
      .run(at, at);
    database.prepare("insert into conversations values ('conv_1', 'usr_1', 'agt_1', 't', null, 0, ?, ?)").run(at, at);
    database.prepare("insert into usage_records values ('use_1', 'usr_1', 'conv_1', null, 'm', 1, 2, 3, 4, ?)").run(at);
    database.prepare("insert into usage_records values ('use_2', 'usr_1', 'conv_gone', null, 'm', 1, 2, 3, 4, ?)").run(at);
    await kysely.destroy();

    const store = createSqliteStore({ path });
    await store.migrate();
    expect((await store.getAgent('agt_1'))?.egressDomains).toEqual([]);
    expect((await store.listUsage({ userId: 'usr_1' })).map((record) => [record.id, record.agentId])).toEqual([
      ['use_1', 'agt_1'],
      ['use_2', null],
    ]);
    // The quotas' daily totals (migration 0007) are filled in from the records already there.
    expect(await store.usageTotals('usr_1', '2025-06-01')).toEqual([
      { day: '2025-06-01', model: 'm', requests: 2, usage: { inputTokens: 2, outputTokens: 4, cacheCreationInputTokens: 6, cacheReadInputTokens: 8 } },
    ]);
    // Its existing account holds the first-admin place: a new registration cannot claim it.
    expect(await store.createFirstAdmin({ id: 'usr_2', email: 'b@example.com', passwordHash: 'h' })).toBeNull();
    await store.close();
  });

  it('reports a file that cannot be opened as INTERNAL naming the operation', async () => {
    // A regular file where the folder should be.
    const blocker = join(directory, 'not-a-folder');
    await writeFile(blocker, '');
    const store = createSqliteStore({ path: join(blocker, 'store.db') });
    const error = await store.ping().catch((rejection: unknown) => rejection);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('INTERNAL');
    expect((error as AppError).message).toBe('sqlite store: ping failed');
    await store.close();
  });
});
