import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors.ts';
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
        'conversations',
        'events',
        'invites',
        'sessions',
        'turns',
        'usage_records',
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
