/**
 * Benchmark for the container sandboxes: p50/p95 side by side against the prototype's way (`docker run` of a fresh
 * container per message).
 *
 *   npx tsx bench/sandbox.ts [--runs N] [--live N]      (or BENCH_RUNS, BENCH_LIVE)
 *
 * Measures: cold start to ready (local, runc, gVisor), a warm-pool claim, pause and resume, new-conversation and
 * follow-up time to the first streamed text through the whole platform, host memory per idle conversation, and how
 * many live idle conversations this machine holds. Needs root, a Docker engine with runc and runsc, and the image
 * from `npm run sandbox-image`. Exits 0 whether or not the targets are met.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { Sandbox, SandboxLimits, SandboxProvider } from '../src/core/sandbox.ts';
import { createDockerProvider, type DockerProvider } from '../src/sandbox/docker/index.ts';
import { createLocalProvider } from '../src/sandbox/local/index.ts';
import { ApiClient } from '../test/support/api-client.ts';
import { removeDataDir } from '../test/support/data-dir.ts';
import { startTestPlatform } from '../test/support/platform.ts';
import { claudeBinary } from '../test/support/scripted-model.ts';
import { startScriptedModel, text } from '../test/support/scripted-model.ts';
import { formatBytes, formatMs, summarize, table } from './stats.ts';

const image = process.env.AGENTYARD_SANDBOX_IMAGE ?? 'agentyard-sandbox:latest';
const limits: SandboxLimits = { memoryMb: 2048, cpus: 2, pids: 512 };
/** The default workspace size limit: a new workspace's disk is made in its first acquire, as in production. */
const workspaceDiskMb = 10_240;
const print = (line = ''): void => void process.stdout.write(`${line}\n`);
const progress = (line: string): void => void process.stderr.write(`${line}\n`);

const { values } = parseArgs({ args: process.argv.slice(2), options: { runs: { type: 'string' }, live: { type: 'string' } } });
const runs = Number(values.runs ?? process.env.BENCH_RUNS ?? 10);
const liveTarget = Number(values.live ?? process.env.BENCH_LIVE ?? 40);

const rows: string[][] = [['measure', 'p50', 'p95', 'n', 'baseline p50', 'baseline p95', 'target']];
const row = (name: string, samples: number[], baseline: number[] | null, target = ''): void => {
  const own = summarize(samples);
  const base = baseline ? summarize(baseline) : null;
  rows.push([name, formatMs(own.p50), formatMs(own.p95), String(own.n), base ? formatMs(base.p50) : '-', base ? formatMs(base.p95) : '-', target]);
};

const root = await mkdtemp(path.join(tmpdir(), 'agentyard-bench-sandbox-'));
const model = await startScriptedModel({ script: () => text(['Hello from the scripted model. ', 'This is the benchmark reply.']) });
// The gateway stand-in for provider-level runs and the baseline: a unix socket forwarding to the scripted model.
const socketPath = path.join(root, 'gateway.sock');
const forwarder = createServer((client) => {
  const upstream = connect(Number(new URL(model.url).port), '127.0.0.1');
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
await new Promise<void>((resolve) => forwarder.listen({ path: socketPath, readableAll: true, writableAll: true }, resolve));

try {
  // ---- the prototype's way: a fresh container per message
  progress('baseline: docker run per message');
  const baselineStart: number[] = [];
  const baselineFirstText: number[] = [];
  for (let index = 0; index < runs; index += 1) {
    baselineStart.push(await timeCommand(['docker', 'run', '--rm', '--network', 'none', '--memory', '1g', '--cpus', '1', image, 'true']));
    baselineFirstText.push(await baselineMessage());
  }

  // ---- cold start to ready, per backend (the CLI's own start not counted)
  const providers: Array<[string, () => SandboxProvider]> = [
    ['local', () => createLocalProvider({ dataDir: path.join(root, 'local'), claudeBinary, workspaceDiskMb })],
    ['docker runc', () => createDockerProvider({ dataDir: path.join(root, 'runc'), image, runtime: 'runc', workspaceDiskMb })],
    ['docker gVisor', () => createDockerProvider({ dataDir: path.join(root, 'runsc'), image, runtime: 'runsc', workspaceDiskMb })],
  ];
  const pauseRows: Array<[string, number[], number[]]> = [];
  for (const [name, make] of providers) {
    progress(`cold start and pause/resume: ${name}`);
    const provider = make();
    const starts: number[] = [];
    const pauses: number[] = [];
    const resumes: number[] = [];
    await (await provider.acquire(spec('warmup'))).release();
    for (let index = 0; index < runs; index += 1) {
      const startedAt = performance.now();
      const sandbox = await provider.acquire(spec(`cold-${index}`));
      starts.push(performance.now() - startedAt);
      await exec(sandbox, ['true']);
      let at = performance.now();
      if (await sandbox.pause()) {
        pauses.push(performance.now() - at);
        at = performance.now();
        await sandbox.resume();
        resumes.push(performance.now() - at);
      }
      await sandbox.release();
    }
    await provider.close();
    const target = name === 'docker runc' ? '≤ 500 ms' : name === 'docker gVisor' ? '≤ 800 ms' : '';
    row(`cold start to ready: ${name}`, starts, baselineStart, target);
    pauseRows.push([name, pauses, resumes]);
  }

  // ---- warm-pool claim (runc)
  progress('warm-pool claim: docker runc');
  const pooled = createDockerProvider({ dataDir: path.join(root, 'pool'), image, runtime: 'runc', poolSize: 1, workspaceDiskMb }) as DockerProvider;
  const claims: number[] = [];
  for (let index = 0; index < runs; index += 1) {
    await pooled.warmUp(limits);
    const startedAt = performance.now();
    const sandbox = await pooled.acquire(spec(`warm-${index}`));
    claims.push(performance.now() - startedAt);
    await sandbox.release();
  }
  await pooled.close();
  row('warm-pool claim: docker runc', claims, baselineStart, '≤ 50 ms');
  for (const [name, pauses, resumes] of pauseRows) {
    if (pauses.length === 0) continue;
    row(`pause: ${name}`, pauses, null);
    row(`resume: ${name}`, resumes, null);
  }

  // ---- through the platform: time to first streamed text, memory per idle conversation, live conversations
  const memoryRows: string[][] = [['backend', 'live idle conversations', 'host memory each', 'fit in this machine (memory)', 'follow-up p50 with all live']];
  for (const [name, env] of [
    ['local', {}],
    ['docker runc', { AGENTYARD_SANDBOX: 'docker', AGENTYARD_DOCKER_RUNTIME: 'runc', AGENTYARD_SANDBOX_POOL_SIZE: '2' }],
    ['docker gVisor', { AGENTYARD_SANDBOX: 'docker', AGENTYARD_DOCKER_RUNTIME: 'runsc' }],
  ] as Array<[string, Record<string, string>]>) {
    progress(`platform: ${name}`);
    const dataDir = path.join(root, `platform-${name.replace(/\W+/g, '-')}`);
    const platform = await startTestPlatform({
      model,
      dataDir,
      env: { AGENTYARD_SANDBOX_IMAGE: image, AGENTYARD_PAUSE_AFTER_SECONDS: '0', ...env },
    });
    try {
      const api = await platform.api.registerWithToken(`bench-${Date.now()}@example.com`);
      const newTimes: number[] = [];
      const followTimes: number[] = [];
      const live: string[] = [];
      const before = await memAvailable();
      await firstText(api, await conversation(api), 'warm up');
      for (let index = 0; index < Math.max(runs, liveTarget); index += 1) {
        const id = await conversation(api);
        const first = await firstText(api, id, 'hello');
        if (index < runs) newTimes.push(first);
        if (index < runs) followTimes.push(await firstText(api, id, 'and again'));
        live.push(id);
        if (index % 10 === 9) progress(`  ${index + 1} live conversations`);
      }
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const used = before - (await memAvailable());
      const perConversation = used / (live.length + 1);
      // With every conversation live and idle: does a follow-up still answer as fast?
      const loaded: number[] = [];
      for (const id of live.slice(0, runs)) loaded.push(await firstText(api, id, 'still there?'));
      row(`new conversation → first text: ${name}`, newTimes, baselineFirstText);
      row(`follow-up → first text: ${name}`, followTimes, baselineFirstText);
      const fit = Math.floor((totalmem() * 0.9) / perConversation);
      memoryRows.push([name, String(live.length + 1), formatBytes(perConversation), String(fit), formatMs(summarize(loaded).p50)]);
    } finally {
      await platform.close();
    }
  }

  print(`sandbox benchmark: ${runs} runs each, ${cpus().length} cores, ${formatBytes(totalmem())} memory, image ${image}`);
  print('baseline: the prototype, `docker run --rm --network none` of a fresh container per message (runc)');
  print();
  print(table(rows));
  print();
  print(table(memoryRows));
} finally {
  forwarder.close();
  await model.close();
  await removeDataDir(root);
}

function spec(workspaceId: string) {
  return { workspaceId, limits, gatewaySocket: socketPath };
}

async function exec(sandbox: Sandbox, argv: string[]): Promise<void> {
  const child = sandbox.exec(argv);
  child.stdout.resume();
  child.stderr.resume();
  await child.exited;
}

function timeCommand(argv: string[]): Promise<number> {
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(performance.now() - startedAt) : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}

/** The prototype's message: a fresh container runs `claude -p`; time until its first streamed text. */
function baselineMessage(): Promise<number> {
  const startedAt = performance.now();
  const script = [
    'socat TCP-LISTEN:4180,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:/run/agentyard/gateway.sock &',
    'exec claude -p hello --output-format stream-json --verbose --include-partial-messages --model claude-sonnet-5',
  ].join('\n');
  const child = spawn(
    'docker',
    ['run', '--rm', '-i', '--network', 'none', '--memory', '1g', '--cpus', '1', '-v', `${socketPath}:/run/agentyard/gateway.sock`,
      '-e', 'ANTHROPIC_BASE_URL=http://127.0.0.1:4180', '-e', 'ANTHROPIC_API_KEY=sk-bench', '-e', 'CLAUDE_CODE_MAX_RETRIES=0', image, 'sh', '-c', script],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return new Promise((resolve, reject) => {
    let done = false;
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (done || !line.includes('text_delta')) return;
      done = true;
      resolve(performance.now() - startedAt);
    });
    child.once('exit', (code) => !done && reject(new Error(`baseline container exited ${code} without text`)));
  });
}

async function conversation(api: ApiClient): Promise<string> {
  const response = await api.request('POST', '/api/conversations', { title: 'bench' });
  if (response.status !== 201) throw new Error(`create conversation: ${response.status}`);
  return response.body.id as string;
}

/** Posts a message and times it to the first streamed `message.delta` of its turn, then waits for the turn's end. */
async function firstText(api: ApiClient, conversationId: string, message: string): Promise<number> {
  const startedAt = performance.now();
  const sent = await api.request('POST', `/api/conversations/${conversationId}/messages`, { text: message });
  if (sent.status !== 202) throw new Error(`send: ${sent.status} ${JSON.stringify(sent.body)}`);
  const turnId = sent.body.turnId as string;
  let firstAt = 0;
  await api.readEvents(conversationId, {
    timeoutMs: 120_000,
    until: (events) => {
      const mine = events.filter((event) => event.data?.turnId === turnId);
      if (!firstAt && mine.some((event) => event.event === 'message.delta')) firstAt = performance.now();
      const ended = mine.find((event) => event.event === 'turn.ended');
      if (ended && ended.data.status !== 'completed') throw new Error(`turn ${ended.data.status}: ${JSON.stringify(ended.data.error)}`);
      return Boolean(ended);
    },
  });
  return firstAt - startedAt;
}

async function memAvailable(): Promise<number> {
  const text = await readFile('/proc/meminfo', 'utf8');
  return Number(/^MemAvailable:\s+(\d+) kB/m.exec(text)![1]) * 1024;
}
