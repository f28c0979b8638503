import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EventStreamClient, type SequencedEvent } from './event-stream.ts';

/** A real SSE server whose every connection is scripted by the test. */
interface ScriptedServer {
  url: string;
  requests: { after: string | null; lastEventId: string | undefined }[];
  close(): Promise<void>;
}

type Connection = (response: ServerResponse, request: { after: number }) => void | Promise<void>;

async function startServer(connections: Connection[]): Promise<ScriptedServer> {
  const requests: ScriptedServer['requests'] = [];
  const open = new Set<ServerResponse>();
  const server: Server = createServer((request: IncomingMessage, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const lastEventId = request.headers['last-event-id'] as string | undefined;
    requests.push({ after: url.searchParams.get('after'), lastEventId });
    const script = connections[requests.length - 1];
    if (!script) {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      open.add(response);
      return; // stays open, silent
    }
    open.add(response);
    response.on('close', () => open.delete(response));
    void script(response, { after: Number(lastEventId ?? url.searchParams.get('after') ?? 0) });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/events`,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const response of open) response.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const frame = (seq: number, type = 'message.delta'): string => `id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify({ seq, type, text: `e${seq}` })}\n\n`;
const head = (response: ServerResponse): void => {
  response.writeHead(200, { 'content-type': 'text/event-stream' });
  response.write('retry: 2000\n\n');
};

function collect(url: string, options: Partial<ConstructorParameters<typeof EventStreamClient>[0]> = {}): { client: EventStreamClient; seqs: number[]; until(count: number): Promise<void> } {
  const seqs: number[] = [];
  const client = new EventStreamClient({
    url,
    retryMs: { initial: 20, max: 50 },
    gapTimeoutMs: 200,
    onEvents: (events: SequencedEvent[]) => seqs.push(...events.map((event) => event.seq)),
    ...options,
  });
  return {
    client,
    seqs,
    async until(count) {
      const deadline = Date.now() + 5_000;
      while (seqs.length < count) {
        if (Date.now() > deadline) throw new Error(`got ${JSON.stringify(seqs)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}

describe('EventStreamClient', () => {
  let server: ScriptedServer | undefined;
  let client: EventStreamClient | undefined;
  afterEach(async () => {
    client?.stop();
    await server?.close();
  });

  it('resumes after a dropped connection from the last event it delivered', async () => {
    server = await startServer([
      (response) => {
        head(response);
        response.write(frame(1) + frame(2) + frame(3));
        setTimeout(() => response.destroy(), 50); // the network drops mid-turn
      },
      (response, { after }) => {
        head(response);
        for (let seq = after + 1; seq <= 5; seq += 1) response.write(frame(seq));
      },
    ]);
    const run = collect(server.url);
    client = run.client;
    client.start();
    await run.until(5);
    expect(run.seqs).toEqual([1, 2, 3, 4, 5]);
    expect(server.requests).toEqual([
      { after: '0', lastEventId: '0' },
      { after: '3', lastEventId: '3' },
    ]);
    expect(client.lastSeq).toBe(5);
  });

  it('starts after the event it is told it already has', async () => {
    server = await startServer([
      (response, { after }) => {
        head(response);
        for (let seq = after + 1; seq <= 12; seq += 1) response.write(frame(seq));
      },
    ]);
    const run = collect(server.url, { after: 10 });
    client = run.client;
    client.start();
    await run.until(2);
    expect(run.seqs).toEqual([11, 12]);
    expect(server.requests[0]).toEqual({ after: '10', lastEventId: '10' });
  });

  it('delivers each event once when a replay overlaps what it already has', async () => {
    server = await startServer([
      (response) => {
        head(response);
        response.write(frame(1) + frame(2) + frame(2) + frame(3));
        setTimeout(() => response.end(), 50);
      },
      (response) => {
        head(response);
        // A server (or proxy) that replays from the start anyway.
        for (let seq = 1; seq <= 4; seq += 1) response.write(frame(seq));
      },
    ]);
    const run = collect(server.url);
    client = run.client;
    client.start();
    await run.until(4);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(run.seqs).toEqual([1, 2, 3, 4]);
  });

  it('delivers events in sequence order even when they arrive out of order', async () => {
    server = await startServer([
      (response) => {
        head(response);
        response.write(frame(1) + frame(2) + frame(4));
        setTimeout(() => response.write(frame(3) + frame(5)), 50);
      },
    ]);
    const batches: number[][] = [];
    const run = collect(server.url, { onEvents: (events) => batches.push(events.map((event) => event.seq)) });
    client = run.client;
    client.start();
    const deadline = Date.now() + 5_000;
    while (batches.flat().length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(batches).toEqual([[1, 2], [3, 4, 5]]);
  });

  it('asks again for a missing event instead of waiting for it forever', async () => {
    server = await startServer([
      (response) => {
        head(response);
        response.write(frame(1) + frame(3)); // 2 is lost; the connection stays open
      },
      (response, { after }) => {
        head(response);
        for (let seq = after + 1; seq <= 3; seq += 1) response.write(frame(seq));
      },
    ]);
    const run = collect(server.url);
    client = run.client;
    client.start();
    await run.until(3);
    expect(run.seqs).toEqual([1, 2, 3]);
    expect(server.requests.map((request) => request.after)).toEqual(['0', '1']);
  });

  it('reconnects after a stream error event, and stops for good when the conversation is not found', async () => {
    const fatal: unknown[] = [];
    server = await startServer([
      (response) => {
        head(response);
        response.end(frame(1) + 'event: error\ndata: {"code":"INTERNAL","message":"the event stream failed; reconnect to resume"}\n\n');
      },
      (response) => {
        response.writeHead(404, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'conversation not found' } }));
      },
    ]);
    const states: string[] = [];
    const run = collect(server.url, { onFatal: (error) => fatal.push(error), onState: (state) => states.push(state) });
    client = run.client;
    client.start();
    const deadline = Date.now() + 5_000;
    while (fatal.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(run.seqs).toEqual([1]);
    expect(fatal).toEqual([{ status: 404, code: 'NOT_FOUND', message: 'conversation not found' }]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(server.requests).toHaveLength(2);
    expect(states.at(-1)).toBe('stopped');
  });

  it('resumes after the server cuts the stream in the middle of an event', async () => {
    server = await startServer([
      (response) => {
        head(response);
        // As when the server ends a stream whose client stopped reading: the last event arrives only in part.
        response.write(frame(1) + frame(2) + frame(3).slice(0, 12));
        setTimeout(() => response.destroy(), 50);
      },
      (response, { after }) => {
        head(response);
        for (let seq = after + 1; seq <= 4; seq += 1) response.write(frame(seq));
      },
    ]);
    const run = collect(server.url);
    client = run.client;
    client.start();
    await run.until(4);
    expect(run.seqs).toEqual([1, 2, 3, 4]);
    expect(server.requests[1]).toEqual({ after: '2', lastEventId: '2' });
  });

  it('waits before reconnecting when the server ends the stream with an error, and says why', async () => {
    const failing: Connection = (response) => {
      head(response);
      response.end('event: error\ndata: {"code":"INTERNAL","message":"the event stream failed; reconnect to resume"}\n\n');
    };
    server = await startServer(Array.from({ length: 50 }, () => failing));
    const errors: string[] = [];
    const run = collect(server.url, {
      retryMs: { initial: 150, max: 150 },
      onState: (_state, detail) => {
        if (detail.error) errors.push(detail.error);
      },
    });
    client = run.client;
    client.start();
    await new Promise((resolve) => setTimeout(resolve, 400));
    // At once would be dozens of connections by now.
    expect(server.requests.length).toBeLessThanOrEqual(5);
    const deadline = Date.now() + 5_000;
    while (server.requests.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(server.requests.length).toBeGreaterThanOrEqual(2);
    expect(errors[0]).toBe('the event stream failed; reconnect to resume');
  });

  it('retries when the server refuses a stream for now (429), showing its message', async () => {
    server = await startServer([
      (response) => {
        response.writeHead(429, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: { code: 'TOO_MANY_STREAMS', message: 'this conversation has 16 event streams open' } }));
      },
      (response, { after }) => {
        head(response);
        response.write(frame(after + 1));
      },
    ]);
    const errors: string[] = [];
    const run = collect(server.url, {
      onState: (_state, detail) => {
        if (detail.error) errors.push(detail.error);
      },
    });
    client = run.client;
    client.start();
    await run.until(1);
    expect(run.seqs).toEqual([1]);
    expect(errors).toEqual(['this conversation has 16 event streams open']);
  });

  it('reconnects when even the heartbeat stops arriving', async () => {
    server = await startServer([
      (response) => {
        head(response);
        response.write(frame(1)); // then silence, as behind a dead proxy
      },
      (response, { after }) => {
        head(response);
        response.write(frame(after + 1));
      },
    ]);
    const run = collect(server.url, { idleTimeoutMs: 200 });
    client = run.client;
    client.start();
    await run.until(2);
    expect(run.seqs).toEqual([1, 2]);
    expect(server.requests[1]?.after).toBe('1');
  });
});
