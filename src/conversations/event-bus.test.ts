import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import type { ConversationEvent } from '../core/events.ts';
import type { Store } from '../core/store.ts';
import { createPostgresStore } from '../store/postgres/index.ts';
import { listenerApplicationName } from '../store/postgres/notification-listener.ts';
import { EventBus } from './event-bus.ts';
import { conversationFixture } from '../../test/support/store-fixtures.ts';

/** Two stores on one database play two replicas: A appends, B's bus delivers to its subscribers. */
describe('EventBus across replicas (PostgreSQL)', () => {
  let database: TestPostgres;
  let writer: Store;
  let reader: Store;
  let conversationId: string;

  beforeAll(async () => {
    database = await startTestPostgres();
    writer = createPostgresStore({ url: database.url });
    await writer.migrate();
    reader = createPostgresStore({ url: database.url });
    conversationId = (await conversationFixture(writer)).conversationId;
  });

  afterAll(async () => {
    await writer?.close();
    await reader?.close();
    await database?.stop();
  });

  /** Resolves once the reader's listening connection is up (its first gap report comes once it listens). */
  function listening(store: Store): Promise<void> {
    return new Promise((resolve) => {
      const stop = store.notifications.onGap(() => {
        stop();
        resolve();
      });
    });
  }

  async function until(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('delivers every event another replica appends, in order and once, also across a dropped listening connection', async () => {
    const ready = listening(reader);
    const bus = new EventBus(reader);
    const seen: ConversationEvent[] = [];
    const unsubscribe = bus.subscribe(conversationId, (event) => seen.push(event));
    await ready;

    const append = async (count: number): Promise<void> => {
      for (let index = 0; index < count; index++) {
        await writer.appendEvent(conversationId, { type: 'message.delta', turnId: 'turn-x', messageId: 'msg-x', text: `t${index}` });
      }
    };
    await append(20);
    await until(() => seen.length >= 20, '20 events');

    // The listening connection dies while events keep coming: they are read from the store once it listens again.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const relistened = listening(reader);
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [listenerApplicationName]);
    await admin.end();
    await append(15);
    await relistened;
    // No later event wakes the bus: the gap report alone must bring the 15 appended while nobody listened.
    await until(() => seen.length >= 35, 'the 15 events appended while the listener was down');
    await append(5);
    await until(() => seen.length >= 40, '40 events');
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(seen.map((event) => event.seq)).toEqual(Array.from({ length: 40 }, (_, index) => index + 1));
    unsubscribe();
    bus.close();
  });

  it('publishes an event this replica appended once, though the store notifies it back', async () => {
    const ready = listening(writer);
    const bus = new EventBus(writer);
    const seen: number[] = [];
    const unsubscribe = bus.subscribe(conversationId, (event) => seen.push(event.seq));
    await ready;
    const first = await writer.appendEvent(conversationId, { type: 'message.delta', turnId: 'turn-y', messageId: 'msg-y', text: 'a' });
    bus.publish(first);
    const second = await writer.appendEvent(conversationId, { type: 'message.delta', turnId: 'turn-y', messageId: 'msg-y', text: 'b' });
    bus.publish(second);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(seen).toEqual([first.seq, second.seq]);
    unsubscribe();
    bus.close();
  });
});
