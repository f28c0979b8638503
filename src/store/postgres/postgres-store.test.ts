import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../../test/support/postgres.ts';
import { AppError } from '../../core/errors.ts';
import { describeStoreContract } from '../store.contract.ts';
import { createPostgresStore } from './index.ts';
import { listenerApplicationName } from './notification-listener.ts';
import { conversationFixture } from '../../../test/support/store-fixtures.ts';

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
  'replicas',
  'conversation_leases',
  'lease_history',
  'gateway_grants',
  'replica_tasks',
  'usage_totals',
  'rate_limit_windows',
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

describeStoreContract('postgres', makeEmptyStore, {
  openPeer: async () => createPostgresStore({ url: database.url }),
});

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

  it('listens again after its listening connection is killed, reports the gap, and hears later events', async () => {
    const store = await makeEmptyStore();
    const peer = createPostgresStore({ url: database.url });
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      let gaps = 0;
      let gapSeen: () => void = () => undefined;
      store.notifications.onGap(() => {
        gaps += 1;
        gapSeen();
      });
      const heard: number[] = [];
      let eventSeen: () => void = () => undefined;
      store.notifications.onEventAppended((_conversationId, seq) => {
        heard.push(seq);
        eventSeen();
      });
      const until = (condition: () => boolean, what: string, set: (wake: () => void) => void): Promise<void> =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${what} did not happen within 15 s`)), 15_000);
          const check = (): void => {
            if (!condition()) return;
            clearTimeout(timer);
            resolve();
          };
          set(check);
          check();
        });
      const gapCount = (count: number) => until(() => gaps >= count, `gap ${count}`, (wake) => (gapSeen = wake));
      const heardSeq = (seq: number) => until(() => heard.includes(seq), `event ${seq}`, (wake) => (eventSeen = wake));

      const conversation = { id: (await conversationFixture(peer)).conversationId };
      const event = { type: 'message.delta', turnId: 't', messageId: 'm', text: 'x' } as const;

      await gapCount(1);
      await peer.appendEvent(conversation.id, event);
      await heardSeq(1);

      const killed = await admin.query<{ pid: number }>(
        'select pg_terminate_backend(pid), pid from pg_stat_activity where application_name = $1 and datname = current_database()',
        [listenerApplicationName],
      );
      expect(killed.rowCount).toBe(1);
      // Appended while nobody listens: lost as a notification, which is what the gap tells listeners.
      await peer.appendEvent(conversation.id, event);
      await gapCount(2);
      const listening = await admin.query<{ pid: number }>(
        'select pid from pg_stat_activity where application_name = $1 and datname = current_database()',
        [listenerApplicationName],
      );
      expect(listening.rows.map((row) => row.pid)).not.toContain(killed.rows[0]?.pid);
      await peer.appendEvent(conversation.id, event);
      await heardSeq(3);
      expect(gaps).toBe(2);
    } finally {
      await admin.end();
      await peer.close();
      await store.close();
    }
  });

  it('ends its listening connection on close', async () => {
    const store = await makeEmptyStore();
    let listening: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (listening = resolve));
    store.notifications.onGap(() => listening());
    await opened;
    await store.close();
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      // The server may take a moment to see the connection go.
      let count = -1;
      for (let attempt = 0; attempt < 100 && count !== 0; attempt += 1) {
        const result = await admin.query('select 1 from pg_stat_activity where application_name = $1 and datname = current_database()', [
          listenerApplicationName,
        ]);
        count = result.rowCount ?? -1;
        if (count !== 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(count).toBe(0);
    } finally {
      await admin.end();
    }
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
