/**
 * Benchmark for the model gateway: the latency it adds to a model request compared with a direct connection to
 * the scripted model (p50 and p95), and its streaming throughput while 20 sandboxes stream at once.
 *
 *   npm run bench:gateway -- [--requests N] [--warmup N] [--sandboxes N] [--events N]
 *   (or BENCH_REQUESTS, BENCH_WARMUP, BENCH_SANDBOXES, BENCH_EVENTS)
 *
 * The scripted model runs in a child process. The gateway runs in this process as the platform builds it: with
 * a real quota check and per-user credential lookup on a SQLite store (both answered from memory after the first
 * request). Clients reach it over its unix socket, as a sandbox's bridge does; a second series goes through a
 * socat TCP bridge like the sandbox's own. Direct and gateway requests alternate, so drift hits both alike.
 * Target: at most 1 ms added at p50.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGateway, type Gateway } from '../src/gateway/gateway.ts';
import { UserCredentials } from '../src/gateway/user-credentials.ts';
import { createSqliteStore } from '../src/store/sqlite/index.ts';
import { createPriceTable } from '../src/usage/price-table.ts';
import { QuotasService } from '../src/usage/quotas-service.ts';
import { startScriptedModel, text } from '../test/support/scripted-model.ts';
import { formatMs, summarize, table } from './stats.ts';

const print = (line = ''): void => void process.stdout.write(`${line}\n`);
const progress = (line: string): void => void process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------------
// The scripted model process: `STREAM n` gets n text deltas at once; anything else a two-chunk reply.

async function serveModel(): Promise<void> {
  const model = await startScriptedModel({
    script: (request) => {
      const match = /STREAM (\d+)/.exec(request.lastUserText);
      if (match) return text(Array.from({ length: Number(match[1]) }, (_, index) => `delta ${index} `));
      return text(['Hello from the scripted model. ', 'This is the benchmark reply.']);
    },
  });
  setInterval(() => (model.requests.length = 0), 500);
  process.stdin.on('end', () => void model.close().then(() => process.exit(0)));
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ url: model.url })}\n`);
}

interface BenchOptions {
  requests: number;
  warmup: number;
  sandboxes: number;
  events: number;
}

function readOptions(): BenchOptions {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { requests: { type: 'string' }, warmup: { type: 'string' }, sandboxes: { type: 'string' }, events: { type: 'string' } },
  });
  const number = (flag: string | undefined, env: string | undefined, fallback: number): number => {
    const value = Number(flag ?? env ?? fallback);
    if (!Number.isInteger(value) || value < 1) throw new Error(`not a positive integer: ${flag ?? env}`);
    return value;
  };
  return {
    requests: number(values.requests, process.env.BENCH_REQUESTS, 1000),
    warmup: number(values.warmup, process.env.BENCH_WARMUP, 100),
    sandboxes: number(values.sandboxes, process.env.BENCH_SANDBOXES, 20),
    events: number(values.events, process.env.BENCH_EVENTS, 2000),
  };
}

async function startModelProcess(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--serve-model'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir() },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`the model process exited (${code})`)));
  });
  return { url, child };
}

/** Where a request goes: the model directly (TCP), or a sandbox's gateway socket (optionally through a TCP bridge). */
interface Target {
  agent: Agent;
  connection: { host: string; port: number } | { socketPath: string };
  token: string;
}

interface Result {
  ms: number;
  events: number;
}

/** One Messages request; resolves when the whole answer has arrived, counting its SSE events. */
function post(target: Target, body: string): Promise<Result> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        ...target.connection,
        agent: target.agent,
        method: 'POST',
        path: '/v1/messages?beta=true',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-api-key': target.token, 'anthropic-version': '2023-06-01' },
      },
      (response) => {
        let events = 0;
        let tail = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          const textChunk = tail + chunk;
          events += textChunk.split('event: ').length - 1;
          tail = textChunk.slice(-6);
        });
        response.on('end', () => {
          if (response.statusCode !== 200) reject(new Error(`status ${response.statusCode}`));
          else resolve({ ms: performance.now() - started, events });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

const messages = (prompt: string, padding = 0): string =>
  JSON.stringify({
    model: 'claude-sonnet-5',
    max_tokens: 1024,
    stream: true,
    system: [{ type: 'text', text: 'x'.repeat(padding) }],
    messages: [{ role: 'user', content: prompt }],
  });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A socat TCP→unix bridge, as the sandbox runs in front of its gateway socket. */
async function bridge(socketPath: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,nodelay`, `UNIX-CONNECT:${socketPath}`], { stdio: 'ignore' });
  for (let attempt = 0; attempt < 100; attempt++) {
    const ready = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ready) return { port, child };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('socat bridge did not start');
}

async function main(): Promise<void> {
  const options = readOptions();
  const model = await startModelProcess();
  const modelUrl = new URL(model.url);
  const directory = await mkdtemp(path.join(tmpdir(), 'bench-gateway-'));
  const store = createSqliteStore({ path: path.join(directory, 'store.db') });
  await store.migrate();
  const user = await store.createUser({ id: 'usr_bench', email: 'bench@example.com', passwordHash: 'x', role: 'user' });
  const prices = createPriceTable(null);
  // Limits high enough never to refuse, so that every request takes the quota check's full path.
  const quotas = new QuotasService({
    store,
    prices,
    defaults: { tokensPerDay: 1e15, tokensPerMonth: 1e15, costPerDayUsd: 1e12, costPerMonthUsd: 1e12, concurrentSandboxes: null, sandboxHoursPerMonth: 1e9 },
  });
  const credentials = new UserCredentials(store, null);
  const gateway: Gateway = createGateway({
    upstreamUrl: model.url,
    credential: { kind: 'api-key', value: 'sk-ant-bench' },
    socketDir: path.join(directory, 'sockets'),
    onUsage: (usage) => quotas.record({ id: `use_${performance.now()}_${Math.random()}`, ...usage, createdAt: new Date().toISOString() }),
    credentialFor: (userId) => credentials.credentialFor(userId),
    admit: async (grant) => {
      const refusal = await quotas.checkModelRequest(grant.userId);
      return refusal && { code: 'QUOTA_EXCEEDED', message: refusal.message };
    },
    maxStreamsPerSandbox: 8,
  });
  const bridges: ChildProcess[] = [];
  const agents: Agent[] = [];
  const keepAlive = (): Agent => {
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    agents.push(agent);
    return agent;
  };

  try {
    const lease = await gateway.open({ sandboxId: 'sbx_latency', userId: user.id, conversationId: 'conv_bench', agentId: 'agt_bench' });
    const viaBridge = await bridge(lease.socketPath);
    bridges.push(viaBridge.child);
    const direct: Target = { agent: keepAlive(), connection: { host: modelUrl.hostname, port: Number(modelUrl.port) }, token: 'sk-ant-bench' };
    const socket: Target = { agent: keepAlive(), connection: { socketPath: lease.socketPath }, token: lease.token };
    const bridged: Target = { agent: keepAlive(), connection: { host: '127.0.0.1', port: viaBridge.port }, token: lease.token };

    print('# Model gateway benchmark');
    print();
    print(`node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}), ${new Date().toISOString()}`);
    print(`latency: ${options.requests} requests per series after ${options.warmup} warm-up, sequential, keep-alive; a streamed two-delta answer`);
    print();

    const rows: string[][] = [['series', 'body', 'p50', 'p95', 'mean', 'added p50', 'added p95']];
    const added: Record<string, number> = {};
    for (const [bodyName, body] of [['1 KB', messages('hello', 700)], ['80 KB', messages('hello', 80_000)]] as const) {
      const samples: Record<'direct' | 'socket' | 'bridged', number[]> = { direct: [], socket: [], bridged: [] };
      progress(`latency, ${bodyName} bodies …`);
      for (let index = 0; index < options.warmup + options.requests; index++) {
        for (const [name, target] of [['direct', direct], ['socket', socket], ['bridged', bridged]] as const) {
          const { ms } = await post(target, body);
          if (index >= options.warmup) samples[name].push(ms);
        }
      }
      const base = summarize(samples.direct);
      for (const [name, label] of [['direct', 'direct to the model'], ['socket', 'gateway (unix socket)'], ['bridged', 'gateway via socat bridge']] as const) {
        const summary = summarize(samples[name]);
        const isDirect = name === 'direct';
        if (!isDirect) added[`${name} ${bodyName}`] = summary.p50 - base.p50;
        rows.push([label, bodyName, formatMs(summary.p50), formatMs(summary.p95), formatMs(summary.mean), isDirect ? '' : formatMs(summary.p50 - base.p50), isDirect ? '' : formatMs(summary.p95 - base.p95)]);
      }
    }
    print(table(rows));
    print();
    const worst = Math.max(added['socket 1 KB'] ?? Number.NaN, added['socket 80 KB'] ?? Number.NaN);
    print(`added latency of the gateway at p50: ${formatMs(added['socket 1 KB']!)} (1 KB), ${formatMs(added['socket 80 KB']!)} (80 KB): ${worst <= 1 ? 'meets' : 'misses'} the 1 ms target`);
    print();

    // Throughput: N sandboxes, each with its own socket and token, stream one long answer at once.
    progress(`throughput, ${options.sandboxes} sandboxes × ${options.events} deltas …`);
    const leases = await Promise.all(
      Array.from({ length: options.sandboxes }, (_, index) => gateway.open({ sandboxId: `sbx_stream_${index}`, userId: user.id, conversationId: `conv_${index}` })),
    );
    const streamBody = messages(`STREAM ${options.events}`);
    const throughput = async (targets: Target[]): Promise<{ events: number; seconds: number }> => {
      const started = performance.now();
      const results = await Promise.all(targets.map((target) => post(target, streamBody)));
      return { events: results.reduce((sum, result) => sum + result.events, 0), seconds: (performance.now() - started) / 1000 };
    };
    const directTargets = leases.map((): Target => ({ agent: keepAlive(), connection: direct.connection, token: 'sk-ant-bench' }));
    const gatewayTargets = leases.map((item): Target => ({ agent: keepAlive(), connection: { socketPath: item.socketPath }, token: item.token }));
    await throughput(gatewayTargets);
    await throughput(directTargets);
    const throughputRows: string[][] = [['series', 'events', 'seconds', 'events/s']];
    for (const [label, targets] of [['direct to the model', directTargets], ['through one gateway', gatewayTargets]] as const) {
      const runs = [];
      for (let round = 0; round < 3; round++) runs.push(await throughput(targets));
      const best = runs.sort((a, b) => b.events / b.seconds - a.events / a.seconds)[1]!;
      throughputRows.push([label, String(best.events), best.seconds.toFixed(2), Math.round(best.events / best.seconds).toLocaleString('en-US')]);
    }
    print(`throughput: ${options.sandboxes} sandboxes streaming ${options.events} deltas each at once (SSE events counted at the clients; median of 3 rounds)`);
    print();
    print(table(throughputRows));
  } finally {
    for (const agent of agents) agent.destroy();
    for (const child of bridges) child.kill('SIGTERM');
    await gateway.closeAll();
    await store.close();
    model.child.stdin?.end();
    await rm(directory, { recursive: true, force: true });
  }
}

if (process.argv.includes('--serve-model')) await serveModel();
else await main();
