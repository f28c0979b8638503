import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../../test/support/postgres.ts';
import { AppError } from '../../core/errors.ts';
import { describeStoreContract } from '../store.contract.ts';
import { createPostgresStore } from './index.ts';

let database: TestPostgres;

beforeAll(async () => {
  database = await startTestPostgres();
});

afterAll(async () => {
  await database?.stop();
});

const tables = [
  'users',
  'sessions',
  'api_tokens',
  'invites',
  'agents',
  'conversations',
  'turns',
  'events',
  'usage_records',
  'quota_overrides',
  'user_credentials',
  'egress_log',
  'sandbox_sessions',
  'platform_settings',
];

/** One database for the file, emptied before each test: much faster than a database per test. */
async function makeEmptyStore() {
  const store = createPostgresStore({ url: database.url });
  await store.migrate();
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query(`truncate table ${tables.join(', ')} cascade`);
  } finally {
    await client.end();
  }
  return store;
}

describeStoreContract('postgres', makeEmptyStore);

describe('PostgresStore', () => {
  it('connects only on first use', async () => {
    const store = createPostgresStore({ url: 'postgresql://nobody@127.0.0.1:1/nothing' });
    expect(store.kind).toBe('postgres');
    const error = await store.ping().catch((rejection: unknown) => rejection);
    expect(error).toBeInstanceOf(AppError);
    // A database that cannot be reached is unavailable (503), not an internal error.
    expect((error as AppError).code).toBe('STORE_UNAVAILABLE');
    await store.close();
  });

  it('creates every table', async () => {
    const store = await makeEmptyStore();
    await store.close();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const result = await client.query<{ table_name: string }>(
        "select table_name from information_schema.tables where table_schema = 'public' and table_name not like 'kysely%'",
      );
      expect(result.rows.map((row) => row.table_name).sort()).toEqual([...tables].sort());
    } finally {
      await client.end();
    }
  });
});
