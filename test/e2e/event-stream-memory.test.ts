import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/api-client.ts';
import { removeDataDir } from '../support/data-dir.ts';
import { seedEventHistory } from '../support/event-history.ts';
import { RawEventStream } from '../support/raw-event-stream.ts';
import { killServer, startServerProcess, type ServerProcess } from '../support/server-process.ts';

const clients = 200;
/** How much the server's resident memory may grow while it serves them. */
const boundMb = 300;
// 8 MiB of history, in tool outputs of 32 KiB. The clients are plain sockets of this process (a process each would
// be too many), and over loopback the kernel takes about 4 MB of each stream into its socket buffers anyway: the
// history is larger so that what the server itself would buffer shows.
const historyEvents = 256;
const eventBytes = 32 * 1024;

/** The resident memory of a process, MiB. */
function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
  } catch {
    return 0; // the process is gone
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('event streams whose clients never read', () => {
  let dataDir: string;
  let server: ServerProcess | null = null;
  const streams: RawEventStream[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-sse-memory-'));
  });
  afterAll(async () => {
    await Promise.all(streams.map((stream) => stream.destroy()));
    if (server) await killServer(server, 'SIGTERM');
    await removeDataDir(dataDir);
  });

  it(`keep the server's memory bounded and other users served (${clients} streams on 8 MiB of history)`, async () => {
    server = await startServerProcess({
      AGENTYARD_DATA_DIR: dataDir,
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      ANTHROPIC_API_KEY: 'sk-ant-unused',
      // This test is about what each stream buffers, not about how many may be open.
      AGENTYARD_EVENT_STREAMS_PER_USER: '1000',
      AGENTYARD_EVENT_STREAMS_PER_CONVERSATION: '1000',
      AGENTYARD_RATE_LIMIT_PER_USER: '0',
    });
    const pid = server.child.pid!;
    const api = new ApiClient(server.url);
    const alice = await api.registerWithToken('alice@example.com');
    const bob = await api.registerWithToken('bob@example.com');
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    const lastSeq = await seedEventHistory(dataDir, conversation.id, { count: historyEvents, eventBytes });

    // One reader that does read gets the whole history (and warms the server up before the baseline).
    const all = await alice.readEvents(conversation.id, { until: (events) => events.at(-1)?.id === lastSeq });
    expect(all.map((event) => event.id)).toEqual(Array.from({ length: lastSeq }, (_, index) => index + 1));
    await sleep(500);
    const before = rssMb(pid);

    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 100);
    // Bob asks for his conversations all along, one request after the other.
    const latencies: number[] = [];
    const answers: number[] = [];
    let probing = true;
    const probes = (async () => {
      while (probing) {
        const started = Date.now();
        answers.push((await bob.request('GET', '/api/conversations')).status);
        latencies.push(Date.now() - started);
        await sleep(250);
      }
    })();
    try {
      for (let index = 0; index < clients; index += 1) {
        streams.push(RawEventStream.open(server.url, `/api/conversations/${conversation.id}/events`, alice.authHeaders, { via: 'socket' }));
      }
      // Every stream is served (its first bytes arrive), though none of them reads on.
      const statuses = Promise.all(streams.map((stream) => stream.statusLine()));
      let served = false;
      void statuses.then(() => (served = true));

      // Let the server do what it will with the streams: sample until all are served and the peak has not moved
      // for 2 s (or it is over the bound already).
      let lastPeak = peak;
      let stableSince = Date.now();
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline && peak - before < boundMb && !(served && Date.now() - stableSince >= 2_000)) {
        await sleep(200);
        if (peak > lastPeak + 2) {
          lastPeak = peak;
          stableSince = Date.now();
        }
      }
      probing = false;
      await probes;
      const slowest = Math.max(...latencies);
      console.info(
        `event-stream memory: RSS before ${before.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB (+${(peak - before).toFixed(0)} MiB); ` +
          `another user's ${latencies.length} requests took at most ${slowest} ms`,
      );
      expect(peak - before).toBeLessThan(boundMb);
      // Generous: a loaded CI machine is slow, but a server that serves the streams first makes others wait 20 s and more.
      expect(slowest).toBeLessThan(10_000);
      expect(new Set(answers)).toEqual(new Set([200]));
      expect(served).toBe(true);
      expect(new Set(await statuses)).toEqual(new Set(['HTTP/1.1 200 OK']));
    } finally {
      probing = false;
      clearInterval(sampler);
    }

    // Closing the streams releases them: the server still answers, and a new reader gets everything.
    await Promise.all(streams.splice(0).map((stream) => stream.destroy()));
    const again = await alice.readEvents(conversation.id, { after: lastSeq - 3, until: (events) => events.at(-1)?.id === lastSeq });
    expect(again.map((event) => event.id)).toEqual([lastSeq - 2, lastSeq - 1, lastSeq]);
  });
});
