import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RawEventStream } from '../../test/support/raw-event-stream.ts';
import { builtinDefaultAgent } from '../agents/agents-service.ts';
import { EventBus } from '../conversations/event-bus.ts';
import type { EventData } from '../core/events.ts';
import { newId } from '../core/ids.ts';
import type { Store } from '../core/store.ts';
import { createSqliteStore } from '../store/index.ts';
import { EventStream, eventStreamDefaults, type EventStreamOptions } from './sse.ts';

const delta = (index: number, bytes: number): EventData => ({
  type: 'message.delta',
  turnId: 'turn_1',
  messageId: 'msg_1',
  text: `[${index}]`.padEnd(bytes, 'x'),
});

/** 4 MiB of history, in tool outputs of 32 KiB: several times what the kernel and socat buffer for a client. */
const bigHistory = { count: 128, eventBytes: 32 * 1024 };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

interface Served {
  stream: EventStream;
  response: ServerResponse;
  ended: boolean;
  /** Whether the stream still listens to the conversation's live events. */
  subscribed: boolean;
}

describe('EventStream', () => {
  let store: Store;
  let bus: EventBus;
  let conversationId: string;
  let server: Server | undefined;
  let served: Served[];
  let reads: { afterSeq: number; limit: number; count: number; tick: number }[];
  /** Turns of the event loop so far, counted while `ticking`. */
  let ticks = 0;
  let ticking = false;
  const clients: RawEventStream[] = [];

  beforeEach(async () => {
    store = createSqliteStore({ path: ':memory:' });
    await store.migrate();
    const user = await store.createUser({ id: newId('usr'), email: 'a@example.com', passwordHash: 'hash', role: 'user' });
    const agent = await store.createAgent({ ...builtinDefaultAgent({ model: 'claude-sonnet-5', turnTimeoutSeconds: 60 }), id: newId('agt'), ownerId: user.id });
    conversationId = (await store.createConversation({ id: newId('conv'), userId: user.id, agentId: agent.id, title: 'chat' })).id;
    bus = new EventBus();
    served = [];
    reads = [];
  });
  afterEach(async () => {
    ticking = false;
    await Promise.all(clients.splice(0).map((client) => client.destroy()));
    if (server) {
      server.closeAllConnections();
      await new Promise((resolve) => server!.close(resolve));
    }
    server = undefined;
    await store.close();
  });

  /** A real HTTP server whose every request is one EventStream of the conversation. */
  async function serve(options: Omit<EventStreamOptions, 'after'>): Promise<string> {
    server = createServer((request, response) => {
      const after = Number(request.headers['last-event-id'] ?? 0);
      const entry = { ended: false, subscribed: false } as Served;
      const stream = new EventStream(
        response,
        {
          read: async (afterSeq, limit) => {
            const page = await store.listEvents(conversationId, { afterSeq, limit });
            reads.push({ afterSeq, limit, count: page.length, tick: ticks });
            return page;
          },
          subscribe: (listener) => {
            const unsubscribe = bus.subscribe(conversationId, listener);
            entry.subscribed = true;
            return () => {
              entry.subscribed = false;
              unsubscribe();
            };
          },
        },
        { ...options, after },
      );
      Object.assign(entry, { stream, response });
      served.push(entry);
      stream.onEnd(() => (entry.ended = true));
      stream.start();
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  function open(url: string, after = 0, via: 'socat' | 'socket' = 'socat'): RawEventStream {
    const client = RawEventStream.open(url, '/events', { 'last-event-id': String(after) }, { via });
    clients.push(client);
    return client;
  }

  async function seed(count: number, bytes: number): Promise<number> {
    let last = 0;
    for (let index = 0; index < count; index += 1) last = (await store.appendEvent(conversationId, delta(index, bytes))).seq;
    return last;
  }

  /** As the runner does: persist, then publish. */
  async function publish(count: number, bytes: number): Promise<number> {
    let last = 0;
    for (let index = 0; index < count; index += 1) {
      const event = await store.appendEvent(conversationId, delta(index, bytes));
      bus.publish(event);
      last = event.seq;
    }
    return last;
  }

  const seqs = (client: RawEventStream): number[] => client.events().map((event) => event.id ?? -1);
  const oneTo = (last: number): number[] => Array.from({ length: last }, (_, index) => index + 1);

  it('sends the history, then live events, each once and in order, to a client that reads', async () => {
    const url = await serve({ stallMs: 30_000 });
    await seed(50, 100);
    const client = open(url, 20);
    client.resume();
    await until(() => seqs(client).length === 30, 'the history arrived');
    await publish(5, 100);
    await until(() => seqs(client).length === 35, 'the live events arrived');
    expect(seqs(client)).toEqual(oneTo(55).slice(20));
  });

  it('reads the history a page at a time, and only as fast as the client reads', async () => {
    const url = await serve({ stallMs: 30_000 });
    const { count, eventBytes } = bigHistory;
    const last = await seed(count, eventBytes);
    const client = open(url);
    await until(() => served.length === 1, 'the stream started');
    const response = served[0]!.response;
    let mostBuffered = 0;
    const sampler = setInterval(() => (mostBuffered = Math.max(mostBuffered, response.writableLength)), 5);
    try {
      await sleep(500);
      const readWhilePaused = reads.reduce((sum, read) => sum + read.count, 0) * eventBytes;
      // What the server read and holds for this client is about a page, not the history.
      expect(readWhilePaused).toBeLessThan(last * eventBytes / 2);
      expect(mostBuffered).toBeLessThan(512 * 1024);
      for (const read of reads) expect(read.count * eventBytes).toBeLessThanOrEqual(Math.max(eventStreamDefaults.pageBytes, 8 * eventBytes));

      client.resume();
      await until(() => client.receivedEvent(last), 'the whole history arrived', 30_000);
      expect(seqs(client)).toEqual(oneTo(last));
      expect(mostBuffered).toBeLessThan(512 * 1024);
    } finally {
      clearInterval(sampler);
    }
  });

  it('lets other work run between the pages of a replay', async () => {
    const url = await serve({ stallMs: 30_000 });
    const { count, eventBytes } = bigHistory;
    const last = await seed(count, eventBytes);
    ticks = 0;
    ticking = true;
    const tick = (): void => {
      ticks += 1;
      if (ticking) setImmediate(tick);
    };
    tick();
    // A plain socket over loopback: the kernel takes megabytes at once, so the server never waits for it to drain.
    const client = open(url, 0, 'socket');
    await until(
      () => served[0]?.response.writableNeedDrain === true || reads.some((read) => read.count < read.limit),
      'the socket is full or the replay at its end',
      30_000,
    );
    ticking = false;
    // The event loop turned between any two reads, though the socket took everything at once.
    const pages = reads.filter((read) => read.count > 0);
    expect(pages.length).toBeGreaterThan(5);
    for (let index = 1; index < pages.length; index += 1) expect(pages[index]!.tick).toBeGreaterThan(pages[index - 1]!.tick);
    client.resume();
    await until(() => client.receivedEvent(last), 'the whole history arrived', 30_000);
  });

  it('holds at most maxQueued live events for a client that stopped reading, then reads the rest from the store', async () => {
    const url = await serve({ stallMs: 30_000, maxQueued: 50 });
    const client = open(url);
    await until(() => served.length === 1 && served[0]!.response.headersSent, 'the stream started');
    const stream = served[0]!.stream;
    let mostQueued = 0;
    let last = 0;
    // 3 MB of live events: far more than the socket's buffers take.
    for (let batch = 0; batch < 30; batch += 1) {
      last = await publish(10, 10 * 1024);
      mostQueued = Math.max(mostQueued, stream.queuedCount);
      await sleep(1);
    }
    expect(served[0]!.response.writableNeedDrain).toBe(true);
    expect(mostQueued).toBeLessThanOrEqual(50);
    const readsBefore = reads.length;

    client.resume();
    await until(() => client.receivedEvent(last), 'every event arrived', 30_000);
    expect(seqs(client)).toEqual(oneTo(last));
    // The events dropped from the queue came from the store.
    expect(reads.length).toBeGreaterThan(readsBefore);
  });

  it('sends an event that overtook its predecessor on the bus only after it, from the store', async () => {
    const url = await serve({ stallMs: 30_000 });
    const client = open(url);
    client.resume();
    await until(() => served[0]?.response.headersSent === true, 'the stream started');
    const first = await store.appendEvent(conversationId, delta(1, 10));
    const second = await store.appendEvent(conversationId, delta(2, 10));
    bus.publish(second);
    bus.publish(first);
    await until(() => seqs(client).length === 2, 'both events arrived');
    await sleep(50);
    expect(seqs(client)).toEqual([1, 2]);
  });

  it('ends the stream of a client that does not read for stallMs; resuming after its last event loses nothing', async () => {
    const url = await serve({ stallMs: 300 });
    const last = await seed(bigHistory.count, bigHistory.eventBytes);
    const stalled = open(url);
    await until(() => served[0]?.ended === true, 'the stalled stream ended');
    stalled.resume();
    await stalled.ended;
    const received = seqs(stalled);
    expect(received.length).toBeLessThan(last);
    expect(received).toEqual(oneTo(received.length));

    const resumed = open(url, received.at(-1));
    resumed.resume();
    await until(() => resumed.receivedEvent(last), 'the rest arrived', 30_000);
    expect([...received, ...seqs(resumed)]).toEqual(oneTo(last));
  });

  it('ends with a last error event when ended from outside, and calls its end listeners', async () => {
    const url = await serve({ stallMs: 30_000 });
    await seed(3, 10);
    const client = open(url);
    client.resume();
    await until(() => seqs(client).length === 3, 'the history arrived');
    expect(served[0]!.subscribed).toBe(true);
    served[0]!.stream.end({ code: 'UNAUTHORIZED', message: 'the credential was revoked' });
    await until(() => client.events().length === 4, 'the last event arrived');
    expect(served[0]!.ended).toBe(true);
    expect(client.events().at(-1)).toEqual({ id: null, event: 'error', data: JSON.stringify({ code: 'UNAUTHORIZED', message: 'the credential was revoked' }) });
    // The stream no longer listens to the conversation.
    expect(served[0]!.subscribed).toBe(false);
  });
});
