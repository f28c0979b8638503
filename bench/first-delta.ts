/**
 * Benchmark for "the spine": time from `POST /api/conversations/{id}/messages` to the first streamed
 * `message.delta`, against the prototype's way (a fresh `claude -p` per message), and the server's
 * memory per live conversation.
 *
 *   npm run bench -- [--new N] [--follow-ups N] [--bare N] [--live N] [--warmup N]
 *   (or BENCH_NEW, BENCH_FOLLOW_UPS, BENCH_BARE, BENCH_LIVE, BENCH_WARMUP)
 *
 * The platform runs in this process (real server on port 0, SQLite, bubblewrap sandboxes, the real CLI);
 * the scripted model runs in a child process and answers every request at once with text.
 * Warm-up runs are excluded from every figure. Exits 0 whether or not the targets are met.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Writable } from 'node:stream';
import { loadConfig } from '../src/core/config.ts';
import { createLogger } from '../src/core/logger.ts';
import { startPlatform, type Platform } from '../src/platform.ts';
import { ApiClient, type ApiResponse } from '../test/support/api-client.ts';
import { platformSecret } from '../test/support/platform.ts';
import { claudeBinary, runClaude } from '../test/support/scripted-model.ts';
import { formatBytes, formatMs, summarize, table, type Summary } from './stats.ts';
import { startModelProcess, type ModelProcess } from './model-process.ts';

const model = 'claude-sonnet-5';
const turnTimeoutMs = 120_000;
/** Rounds of N live conversations for the memory figures (the first includes one-off growth). */
const memoryRounds = 2;

const print = (line = ''): void => void process.stdout.write(`${line}\n`);
const progress = (line: string): void => void process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------------
// Options

interface BenchOptions {
  newConversations: number;
  followUps: number;
  bareRuns: number;
  liveConversations: number;
  warmup: number;
}

function readOptions(argv: string[], env: Record<string, string | undefined>): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      new: { type: 'string' },
      'follow-ups': { type: 'string' },
      bare: { type: 'string' },
      live: { type: 'string' },
      warmup: { type: 'string' },
    },
  });
  const count = (flag: string, value: string | undefined, fallback: number, minimum: number): number => {
    if (value === undefined || value === '') return fallback;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < minimum) throw new Error(`${flag} must be an integer ≥ ${minimum}, got ${value}`);
    return parsed;
  };
  return {
    newConversations: count('--new', values.new ?? env.BENCH_NEW, 10, 1),
    followUps: count('--follow-ups', values['follow-ups'] ?? env.BENCH_FOLLOW_UPS, 30, 1),
    bareRuns: count('--bare', values.bare ?? env.BENCH_BARE, 10, 1),
    liveConversations: count('--live', values.live ?? env.BENCH_LIVE, 10, 1),
    warmup: count('--warmup', values.warmup ?? env.BENCH_WARMUP, 2, 0),
  };
}

// ---------------------------------------------------------------------------------------------------
// The scripted model, in a child process


// ---------------------------------------------------------------------------------------------------
// The platform, in this process

/** A log record the benchmark reads to split a new conversation's time into its stages. */
interface LogRecord {
  msg: string;
  /** Date.now() when it was logged. */
  time: number;
  ms?: number;
  workspaceId?: string;
  conversationId?: string;
}

/**
 * Starts the platform in this process like test/support/platform.ts does, but with an info-level logger
 * (as in production) whose lines go to memory, so the sandbox's own start-up time can be read back.
 */
async function startBenchPlatform(options: { dataDir: string; modelUrl: string }): Promise<{ platform: Platform; logs: LogRecord[] }> {
  const logs: LogRecord[] = [];
  const wanted = new Set(['sandbox acquired', 'agent started']);
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) {
        if (!line.includes('"msg"')) continue;
        const record = JSON.parse(line) as LogRecord;
        if (wanted.has(record.msg)) logs.push(record);
      }
      callback();
    },
  });
  const config = loadConfig({
    env: {
      PORT: '0',
      AGENTYARD_DATA_DIR: options.dataDir,
      ANTHROPIC_BASE_URL: options.modelUrl,
      ANTHROPIC_API_KEY: platformSecret,
      AGENTYARD_MODEL_MAX_RETRIES: '0',
      AGENTYARD_DEFAULT_MODEL: model,
      // Live conversations keep their CLI process for the whole run.
      AGENTYARD_IDLE_TIMEOUT_SECONDS: '86400',
    },
  });
  const platform = await startPlatform(config, createLogger({ level: 'info', destination: sink }));
  return { platform, logs };
}

// ---------------------------------------------------------------------------------------------------
// Timing one turn through the platform

interface TimedTurn {
  firstDeltaMs: number;
  /** POST → `turn.started` on the stream: the server's part before the message is written to the CLI. */
  startedMs: number;
  /** Date.now() at the POST and at the first delta, to line up with log records. */
  postedEpoch: number;
  firstDeltaEpoch: number;
  /** The SSE id of the turn's last event: the `after` of the next turn. */
  lastSeq: number;
}

/**
 * Opens the conversation's event stream (after `after`), posts the message once the stream is open,
 * and returns the time from the POST to the first `message.delta`; waits for the turn to end.
 */
async function timeTurn(api: ApiClient, conversationId: string, after: number, text: string): Promise<TimedTurn> {
  const state: {
    postedAt: number;
    postedEpoch: number;
    startedAt: number | null;
    firstDeltaAt: number | null;
    firstDeltaEpoch: number;
    posting: Promise<ApiResponse> | null;
  } = {
    postedAt: 0,
    startedAt: null,
    postedEpoch: 0,
    firstDeltaAt: null,
    firstDeltaEpoch: 0,
    posting: null,
  };
  const events = await api.readEvents(conversationId, {
    after,
    timeoutMs: turnTimeoutMs,
    // readEvents calls `until` once with no events as soon as the stream's response has arrived (the
    // server has subscribed and replayed): the message is posted from there.
    until: (received) => {
      const now = performance.now();
      if (!state.posting) {
        state.postedEpoch = Date.now();
        state.postedAt = performance.now();
        state.posting = api.request('POST', `/api/conversations/${conversationId}/messages`, { text });
        state.posting.catch(() => undefined);
        return false;
      }
      const latest = received.at(-1);
      if (latest?.event === 'turn.started') state.startedAt ??= now;
      if (latest?.event === 'message.delta' && state.firstDeltaAt === null) {
        state.firstDeltaAt = now;
        state.firstDeltaEpoch = Date.now();
      }
      return latest?.event === 'turn.ended' || latest?.event === 'error';
    },
  });
  const sent = await state.posting!;
  if (sent.status !== 202) throw new Error(`POST messages answered ${sent.status}: ${JSON.stringify(sent.body)}`);
  const turnId: string = sent.body.turnId;
  const ended = events.at(-1)!;
  if (ended.event !== 'turn.ended' || ended.data.turnId !== turnId || ended.data.status !== 'completed') {
    throw new Error(`the turn did not complete: ${JSON.stringify(ended)}`);
  }
  const firstDelta = events.find((event) => event.event === 'message.delta');
  if (!firstDelta || firstDelta.data.turnId !== turnId || state.firstDeltaAt === null) {
    throw new Error(`no message.delta for turn ${turnId}: ${events.map((event) => event.event).join(', ')}`);
  }
  return {
    firstDeltaMs: state.firstDeltaAt - state.postedAt,
    startedMs: (state.startedAt ?? Number.NaN) - state.postedAt,
    postedEpoch: state.postedEpoch,
    firstDeltaEpoch: state.firstDeltaEpoch,
    lastSeq: ended.id ?? after,
  };
}

async function createConversation(api: ApiClient, title: string): Promise<string> {
  const created = await api.request('POST', '/api/conversations', { title });
  if (created.status !== 201) throw new Error(`POST conversations answered ${created.status}`);
  return created.body.id as string;
}

async function deleteConversation(api: ApiClient, conversationId: string): Promise<void> {
  const deleted = await api.request('DELETE', `/api/conversations/${conversationId}`);
  if (deleted.status !== 204) throw new Error(`DELETE conversation answered ${deleted.status}`);
}

// ---------------------------------------------------------------------------------------------------
// The prototype's way: a fresh `claude -p` per message, on the host

interface BareRun {
  /** spawn → `system/init` */
  initMs: number;
  /** spawn → first text delta */
  firstDeltaMs: number;
  /** spawn → process exit */
  exitMs: number;
}

function bareEnv(baseUrl: string, home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    ANTHROPIC_BASE_URL: baseUrl,
    ANTHROPIC_API_KEY: 'sk-ant-scripted-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    CLAUDE_CODE_MAX_RETRIES: '0',
    // Root may only bypass permissions with exactly IS_SANDBOX=1 (the host's IS_SANDBOX=yes is not passed on).
    IS_SANDBOX: '1',
    LANG: 'C.UTF-8',
    TERM: 'dumb',
  };
}

async function runBareCli(options: { baseUrl: string; home: string; cwd: string; prompt: string }): Promise<BareRun> {
  const args = [
    '-p', options.prompt,
    '--output-format', 'stream-json',
    '--verbose',
    '--include-partial-messages',
    '--permission-mode', 'bypassPermissions',
    '--model', model,
  ];
  const startedAt = performance.now();
  const child = spawn(claudeBinary, args, { cwd: options.cwd, env: bareEnv(options.baseUrl, options.home), stdio: ['ignore', 'pipe', 'pipe'] });
  let initAt: number | null = null;
  let firstDeltaAt: number | null = null;
  let result: { is_error?: boolean } | null = null;
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
    const now = performance.now();
    if (!line.trim()) return;
    const event = JSON.parse(line) as { type?: string; subtype?: string; event?: { type?: string; delta?: { type?: string } } };
    if (event.type === 'system' && event.subtype === 'init') initAt ??= now;
    if (event.type === 'stream_event' && event.event?.type === 'content_block_delta' && event.event.delta?.type === 'text_delta') firstDeltaAt ??= now;
    if (event.type === 'result') result = event as { is_error?: boolean };
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), turnTimeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode));
  });
  clearTimeout(timer);
  const exitAt = performance.now();
  const ended = result as { is_error?: boolean } | null;
  if (code !== 0 || !ended || ended.is_error || initAt === null || firstDeltaAt === null) {
    throw new Error(`bare claude -p failed (exit ${code}, result ${JSON.stringify(ended)}): ${stderr}`);
  }
  return { initMs: initAt - startedAt, firstDeltaMs: firstDeltaAt - startedAt, exitMs: exitAt - startedAt };
}

/** One stream-json CLI process, many turns: the time from writing each follow-up to its first text delta. */
async function timeWarmCliFollowUps(options: { baseUrl: string; home: string; cwd: string; turns: number }): Promise<number[]> {
  const prompts = Array.from({ length: options.turns }, (_, index) => `warm follow-up ${index}`);
  const run = await runClaude({
    baseUrl: options.baseUrl,
    home: options.home,
    cwd: options.cwd,
    prompts,
    env: { DISABLE_AUTOUPDATER: '1', LANG: 'C.UTF-8', TERM: 'dumb' },
    timeoutMs: 30_000 + 2_000 * options.turns,
  });
  if (run.exitCode !== 0 || run.results.length !== options.turns) {
    throw new Error(`warm CLI run failed (exit ${run.exitCode}, ${run.results.length} results): ${run.stderr.slice(-2000)}`);
  }
  // runClaude writes the next prompt as soon as it has read a `result`, so that event's time is the send time.
  const gaps: number[] = [];
  let sentAt: number | null = null;
  for (const { atMs, event } of run.events) {
    if (event.type === 'result') sentAt = atMs;
    const inner = event.event as { type?: string; delta?: { type?: string } } | undefined;
    if (sentAt !== null && event.type === 'stream_event' && inner?.type === 'content_block_delta' && inner.delta?.type === 'text_delta') {
      gaps.push(atMs - sentAt);
      sentAt = null;
    }
  }
  return gaps;
}

/** Where a new conversation's time goes, from the POST to the first delta (ms, from epoch times in the logs). */
interface NewConversationStages {
  /** POST → the sandbox acquire starts (store, queue, gateway grant). */
  beforeSandbox: number;
  /** The local provider's own measure of sandbox acquire. */
  sandbox: number;
  /** Sandbox ready → the CLI is spawned in it. */
  spawn: number;
  /** CLI spawned → first delta on the client's stream (CLI start-up, model request, streaming back). */
  cliToFirstDelta: number;
}

function splitStages(timed: TimedTurn, conversationId: string, logs: LogRecord[]): NewConversationStages | null {
  const acquired = logs.find((record) => record.msg === 'sandbox acquired' && record.workspaceId === conversationId);
  const agent = logs.find((record) => record.msg === 'agent started' && record.conversationId === conversationId);
  if (!acquired || acquired.ms === undefined || !agent) return null;
  const acquireStarted = acquired.time - acquired.ms;
  return {
    beforeSandbox: acquireStarted - timed.postedEpoch,
    sandbox: acquired.ms,
    spawn: agent.time - acquired.time,
    cliToFirstDelta: timed.firstDeltaEpoch - agent.time,
  };
}

/**
 * The platform's way of running the CLI (stream-json on stdin, a fresh HOME) but on the host, without a
 * sandbox or gateway: spawn → first text delta. Separates the sandbox's cost from the CLI mode's.
 */
async function timeHostStreamJsonCli(options: { baseUrl: string; home: string; cwd: string; prompt: string }): Promise<number> {
  await mkdir(options.home, { recursive: true });
  const run = await runClaude({
    baseUrl: options.baseUrl,
    home: options.home,
    cwd: options.cwd,
    prompts: [options.prompt],
    env: { DISABLE_AUTOUPDATER: '1', LANG: 'C.UTF-8', TERM: 'dumb' },
    timeoutMs: turnTimeoutMs,
  });
  const first = run.events.find(({ event }) => {
    const inner = event.event as { type?: string; delta?: { type?: string } } | undefined;
    return event.type === 'stream_event' && inner?.type === 'content_block_delta' && inner.delta?.type === 'text_delta';
  });
  if (run.exitCode !== 0 || !first) throw new Error(`host stream-json CLI failed (exit ${run.exitCode}): ${run.stderr.slice(-2000)}`);
  return first.atMs;
}

// ---------------------------------------------------------------------------------------------------
// Processes and memory

interface ProcessInfo {
  pid: number;
  name: string;
  rssBytes: number;
}

/** Every live descendant of `rootPid`, with its argv[0] basename and VmRSS (from /proc). */
async function descendants(rootPid: number): Promise<ProcessInfo[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name: state, ppid, …
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // the process ended meanwhile
    }
  }
  const isDescendant = (pid: number): boolean => {
    for (let current = parents.get(pid); current !== undefined && current > 1; current = parents.get(current)) {
      if (current === rootPid) return true;
    }
    return false;
  };
  const found: ProcessInfo[] = [];
  for (const pid of parents.keys()) {
    if (!isDescendant(pid)) continue;
    try {
      const [cmdline, status] = await Promise.all([readFile(`/proc/${pid}/cmdline`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
      const rssKb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
      found.push({ pid, name: path.basename(cmdline.split('\0')[0] ?? ''), rssBytes: rssKb * 1024 });
    } catch {
      // the process ended meanwhile
    }
  }
  return found;
}

const isClaude = (info: ProcessInfo): boolean => info.name === 'claude' || info.name === 'claude.exe';

async function waitForClaudeCount(expected: number, timeoutMs: number): Promise<ProcessInfo[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await descendants(process.pid)).filter(isClaude);
    if (found.length === expected || Date.now() > deadline) return found;
    await delay(100);
  }
}

function garbageCollector(): { gc: () => void; source: string } {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return { gc: exposed, source: '--expose-gc' };
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as unknown;
  if (typeof gc === 'function') return { gc: gc as () => void, source: 'v8.setFlagsFromString(--expose-gc)' };
  return { gc: () => undefined, source: 'unavailable: figures include garbage' };
}

interface MemorySample {
  rss: number;
  heapUsed: number;
  /** V8's committed heap: RSS swings with it, not with what is in use. */
  heapTotal: number;
  /** Memory outside the V8 heap held by JS objects (buffers, sockets). */
  external: number;
}

/** The median of three readings, each after a full GC, once the process has been left alone for a second. */
async function settledMemory(gc: () => void): Promise<MemorySample> {
  for (let round = 0; round < 3; round++) {
    gc();
    await delay(300);
  }
  const samples: MemorySample[] = [];
  for (let round = 0; round < 3; round++) {
    gc();
    const usage = process.memoryUsage();
    samples.push({ rss: usage.rss, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external });
    await delay(200);
  }
  const median = (pick: (sample: MemorySample) => number): number => samples.map(pick).sort((a, b) => a - b)[1]!;
  return {
    rss: median((sample) => sample.rss),
    heapUsed: median((sample) => sample.heapUsed),
    heapTotal: median((sample) => sample.heapTotal),
    external: median((sample) => sample.external),
  };
}

// ---------------------------------------------------------------------------------------------------
// The run

function summaryRows(columns: { title: string; summary: Summary }[]): string[][] {
  const row = (label: string, pick: (summary: Summary) => string): string[] => [label, ...columns.map((column) => pick(column.summary))];
  return [
    ['', ...columns.map((column) => column.title)],
    row('n', (summary) => String(summary.n)),
    row('min', (summary) => formatMs(summary.min)),
    row('p50', (summary) => formatMs(summary.p50)),
    row('p95', (summary) => formatMs(summary.p95)),
    row('max', (summary) => formatMs(summary.max)),
    row('mean', (summary) => formatMs(summary.mean)),
  ];
}

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2), process.env);
  const { gc, source: gcSource } = garbageCollector();
  const root = await mkdtemp(path.join(tmpdir(), 'agentyard-bench-'));
  const bareHome = path.join(root, 'bare-home');
  const bareCwd = path.join(root, 'bare-cwd');
  await mkdir(bareHome, { recursive: true });
  await mkdir(bareCwd, { recursive: true });
  const loadBefore = loadavg();

  let modelProcess: ModelProcess | null = null;
  let platform: Platform | null = null;
  try {
    modelProcess = await startModelProcess();
    const started = await startBenchPlatform({ dataDir: path.join(root, 'data'), modelUrl: modelProcess.url });
    platform = started.platform;
    const logs = started.logs;
    const api = await new ApiClient(platform.url).registerWithToken('bench@example.com');
    const baseUrl = modelProcess.url;

    // Warm-up (excluded): a conversation with a few follow-ups, and bare CLI runs.
    progress(`warm-up: 1 new conversation + ${options.warmup} follow-ups, ${Math.max(1, options.warmup)} bare CLI run(s) of each kind`);
    const warmUp = await createConversation(api, 'warm-up');
    let warmUpSeq = (await timeTurn(api, warmUp, 0, 'warm-up first message')).lastSeq;
    for (let index = 0; index < options.warmup; index++) warmUpSeq = (await timeTurn(api, warmUp, warmUpSeq, `warm-up follow-up ${index}`)).lastSeq;
    for (let index = 0; index < Math.max(1, options.warmup); index++) {
      await runBareCli({ baseUrl, home: bareHome, cwd: bareCwd, prompt: `warm-up ${index}` });
      await timeHostStreamJsonCli({ baseUrl, home: path.join(root, `warm-up-home-${index}`), cwd: bareCwd, prompt: `warm-up ${index}` });
    }
    await deleteConversation(api, warmUp);

    // Memory first, while this process has little garbage: 0 live conversations, N, then 0 again.
    progress(`measuring: memory with 0, ${options.liveConversations} and again 0 live conversations`);
    const noClaude = async (): Promise<void> => {
      const leftOver = await waitForClaudeCount(0, 15_000);
      if (leftOver.length) throw new Error(`${leftOver.length} CLI processes still running with no live conversation`);
    };
    await noClaude();
    const memory: { label: string; sample: MemorySample }[] = [{ label: '0 live conversations', sample: await settledMemory(gc) }];
    let claudes: ProcessInfo[] = [];
    let others: ProcessInfo[] = [];
    for (let round = 1; round <= memoryRounds; round++) {
      const liveIds: string[] = [];
      for (let index = 0; index < options.liveConversations; index++) {
        const conversationId = await createConversation(api, `live ${round}.${index}`);
        liveIds.push(conversationId);
        await timeTurn(api, conversationId, 0, `hello ${index}`);
      }
      claudes = await waitForClaudeCount(options.liveConversations, 15_000);
      memory.push({ label: `${options.liveConversations} live (round ${round})`, sample: await settledMemory(gc) });
      // Besides the CLIs: the sandboxes' own processes. Left out: the model process and tsx's esbuild service.
      const modelPids = new Set([modelProcess.pid, ...(await descendants(modelProcess.pid)).map((info) => info.pid)]);
      others = (await descendants(process.pid)).filter((info) => !isClaude(info) && !modelPids.has(info.pid) && info.name !== 'esbuild');
      for (const conversationId of liveIds) await deleteConversation(api, conversationId);
      await noClaude();
      memory.push({ label: `0 again (round ${round}, after deleting them)`, sample: await settledMemory(gc) });
    }

    // The conversation for follow-ups, warmed up (excluded).
    const live = await createConversation(api, 'follow-ups');
    let liveSeq = (await timeTurn(api, live, 0, 'first message')).lastSeq;
    for (let index = 0; index < options.warmup; index++) liveSeq = (await timeTurn(api, live, liveSeq, `warm-up follow-up ${index}`)).lastSeq;

    // 1 and 3, interleaved so that background load affects both alike.
    progress(`measuring: ${options.newConversations} new conversations interleaved with ${options.bareRuns} bare claude -p runs`);
    const newConversation: number[] = [];
    const stages: (NewConversationStages & { total: number })[] = [];
    const bare: BareRun[] = [];
    const hostStreamJson: number[] = [];
    for (let index = 0; index < Math.max(options.newConversations, options.bareRuns); index++) {
      if (index < options.newConversations) {
        const conversationId = await createConversation(api, `new ${index}`);
        const timed = await timeTurn(api, conversationId, 0, `first message ${index}`);
        newConversation.push(timed.firstDeltaMs);
        const split = splitStages(timed, conversationId, logs);
        if (split) stages.push({ ...split, total: timed.firstDeltaMs });
        await deleteConversation(api, conversationId);
      }
      if (index < options.bareRuns) {
        bare.push(await runBareCli({ baseUrl, home: bareHome, cwd: bareCwd, prompt: `bare message ${index}` }));
        const home = path.join(root, `fresh-home-${index}`);
        hostStreamJson.push(await timeHostStreamJsonCli({ baseUrl, home, cwd: bareCwd, prompt: `stream-json message ${index}` }));
      }
    }

    // 2: follow-ups in the live conversation.
    progress(`measuring: ${options.followUps} follow-ups in a live conversation`);
    const followUp: number[] = [];
    const followUpStarted: number[] = [];
    for (let index = 0; index < options.followUps; index++) {
      const timed = await timeTurn(api, live, liveSeq, `follow-up ${index}`);
      followUp.push(timed.firstDeltaMs);
      followUpStarted.push(timed.startedMs);
      liveSeq = timed.lastSeq;
    }

    // Context: the CLI's own follow-up latency in one warm stream-json process (no server).
    progress(`measuring: ${options.followUps} follow-ups in one bare stream-json CLI process`);
    const warmCli = (
      await timeWarmCliFollowUps({ baseUrl, home: bareHome, cwd: bareCwd, turns: 1 + options.warmup + options.followUps })
    ).slice(options.warmup);
    const loadAfter = loadavg();

    // ------------------------------------------------------------------------------------------------
    // Report
    const newSummary = summarize(newConversation);
    const followUpSummary = summarize(followUp);
    const bareDelta = summarize(bare.map((run) => run.firstDeltaMs));
    const bareInit = summarize(bare.map((run) => run.initMs));
    const bareExit = summarize(bare.map((run) => run.exitMs));
    const warmCliSummary = summarize(warmCli);

    print('Agentyard benchmark: POST message → first message.delta (scripted model answering at once)');
    print(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, ` +
        `load average ${loadBefore.map((value) => value.toFixed(2)).join(' ')} before / ${loadAfter.map((value) => value.toFixed(2)).join(' ')} after`,
    );
    print(`runs: ${options.newConversations} new conversations, ${options.followUps} follow-ups, ${options.bareRuns} bare CLI runs, ${options.liveConversations} live for memory; warm-up excluded`);
    print('percentiles: nearest rank (p95 of 10 samples is the maximum)');
    print();
    print(
      table(
        summaryRows([
          { title: '1 new conversation', summary: newSummary },
          { title: '2 follow-up (live CLI)', summary: followUpSummary },
          { title: '3 bare claude -p → 1st delta', summary: bareDelta },
        ]),
      ),
    );
    print();
    print('  1, 2: POST /api/conversations/{id}/messages → first message.delta on the already-open SSE stream (1 includes sandbox acquire and CLI start)');
    print('  3:    the prototype\'s way on the host: spawn `claude -p <prompt> --output-format stream-json --verbose --include-partial-messages` → first text_delta');
    print();
    if (stages.length) {
      const stage = (pick: (value: NewConversationStages) => number): string => formatMs(summarize(stages.map(pick)).p50);
      print(
        `Where a new conversation's time goes (p50 of each stage over ${stages.length}, from the server's logs, ms resolution): ` +
          `POST → sandbox acquire ${stage((value) => value.beforeSandbox)}, sandbox acquire ${stage((value) => value.sandbox)}, ` +
          `→ CLI spawned ${stage((value) => value.spawn)}, CLI spawned → first delta ${stage((value) => value.cliToFirstDelta)}`,
      );
      const slowest = stages.reduce((worst, value) => (value.total > worst.total ? value : worst));
      print(
        `  slowest (${formatMs(slowest.total)}): POST → sandbox acquire ${formatMs(slowest.beforeSandbox)}, sandbox acquire ${formatMs(slowest.sandbox)}, ` +
          `→ CLI spawned ${formatMs(slowest.spawn)}, CLI spawned → first delta ${formatMs(slowest.cliToFirstDelta)}`,
      );
      print();
    }
    print('Context, on the host without the server:');
    print(
      table(
        summaryRows([
          { title: 'A', summary: bareInit },
          { title: 'B', summary: bareExit },
          { title: 'C', summary: summarize(hostStreamJson) },
          { title: 'D', summary: warmCliSummary },
        ]),
      ),
    );
    print();
    print('  A: bare claude -p (as 3): spawn → system/init, the CLI\'s own start time');
    print('  B: bare claude -p (as 3): spawn → exit');
    print('  C: the platform\'s CLI mode on the host (stream-json on stdin, a fresh HOME per run, no sandbox or gateway): spawn → first text_delta');
    print('  D: one warm stream-json CLI process, no server: writing a follow-up → its first text_delta');
    print();
    const newRatio = newSummary.p50 / bareDelta.p50;
    const platformFollowUpShare = followUpSummary.p50 - warmCliSummary.p50;
    const verdict = (met: boolean): string => (met ? 'MET' : 'NOT MET');
    print('Targets:');
    print(`  follow-up p50 ≤ 50 ms: ${formatMs(followUpSummary.p50)} → ${verdict(followUpSummary.p50 <= 50)}`);
    print(
      `    (of which the CLI itself, warm process without the server, p50 ${formatMs(warmCliSummary.p50)}; ` +
        `platform share ≈ ${formatMs(platformFollowUpShare)} = follow-up p50 − warm CLI p50)`,
    );
    print(
      `    (follow-up split: POST → turn.started on the stream p50 ${formatMs(summarize(followUpStarted).p50)}, ` +
        `turn.started → first delta p50 ${formatMs(summarize(followUp.map((value, index) => value - followUpStarted[index]!)).p50)})`,
    );
    print(
      `  new-conversation p50 within 20 % of the bare CLI's start: ratio = new-conversation p50 / bare claude -p spawn→first-delta p50 = ` +
        `${formatMs(newSummary.p50)} / ${formatMs(bareDelta.p50)} = ${newRatio.toFixed(2)} (target ≤ 1.20) → ${verdict(newRatio <= 1.2)}`,
    );
    print(`    (against spawn → system/init instead: ${formatMs(newSummary.p50)} / ${formatMs(bareInit.p50)} = ${(newSummary.p50 / bareInit.p50).toFixed(2)})`);
    print();

    const count = options.liveConversations;
    print(`Server memory per live conversation (this process: server + HTTP client; the model runs in its own process; each figure the median of 3 readings after a full GC via ${gcSource}):`);
    const fields = (sample: MemorySample): number[] => [sample.rss, sample.heapUsed, sample.heapTotal, sample.external];
    const perConversation = (before: MemorySample, after: MemorySample): string[] => {
      const start = fields(before);
      return fields(after).map((value, index) => formatBytes((value - start[index]!) / count));
    };
    const rows: string[][] = [
      ['', 'RSS', 'heapUsed', 'heapTotal', 'external'],
      ...memory.map(({ label, sample }) => [label, ...fields(sample).map(formatBytes)]),
    ];
    for (let round = 1; round <= memoryRounds; round++) {
      const before = memory[2 * round - 2]!.sample;
      const loaded = memory[2 * round - 1]!.sample;
      rows.push([`per conversation, round ${round}: (N − 0 before) / N`, ...perConversation(before, loaded)]);
    }
    print(table(rows));
    const zeroRss = memory.filter((_, index) => index % 2 === 0).map(({ sample }) => sample.rss);
    const noise = Math.max(...zeroRss) - Math.min(...zeroRss);
    print(
      '  round 1 includes one-off growth (caches, compiled code) that stays after the conversations are gone; ' +
        'round 2 starts from that warmed state.',
    );
    print(
      `  RSS noise: the readings with 0 live conversations differ by up to ${formatBytes(noise)} (${formatBytes(noise / count)} per conversation at N = ${count}); ` +
        'per-conversation RSS figures smaller than that are within noise, and heapUsed is the steadier measure.',
    );
    const claudeRss = summarize(claudes.map((info) => info.rssBytes));
    print(
      `  CLI processes (not counted above): ${claudes.length} live, VmRSS per process min ${formatBytes(claudeRss.min)}, ` +
        `p50 ${formatBytes(claudeRss.p50)}, max ${formatBytes(claudeRss.max)}; total ${formatBytes(claudes.reduce((sum, info) => sum + info.rssBytes, 0))}`,
    );
    const byName = new Map<string, { count: number; rss: number }>();
    for (const info of others) {
      const entry = byName.get(info.name) ?? { count: 0, rss: 0 };
      byName.set(info.name, { count: entry.count + 1, rss: entry.rss + info.rssBytes });
    }
    if (byName.size) {
      print(
        `  other sandbox processes per conversation (not counted above): ` +
          [...byName].map(([name, entry]) => `${(entry.count / count).toFixed(1)} × ${name || '?'} (${formatBytes(entry.rss / entry.count)} each)`).join(', '),
      );
    }
  } finally {
    progress('cleaning up');
    await platform?.close();
    await modelProcess?.close();
    await rm(root, { recursive: true, force: true });
  }
}

try {
  await main();
  process.exit(0);
} catch (error) {
  process.stderr.write(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
