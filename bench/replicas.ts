/**
 * Benchmark for several replicas on one PostgreSQL database and one data directory (docs/decisions/0013-replicas.md),
 * on this machine: `agentyard serve` processes started by test/support/replicas.ts, local sandboxes, the real CLI
 * against the scripted model (in a child process).
 *
 *   TEST_DATABASE_URL=postgres://… npm run bench:replicas -- [--parts delivery,failover,overhead] [--lease S]
 *     [--subscribers N] [--conversations N] [--rounds N] [--deltas N] [--delta-ms MS]
 *     [--kills N] [--turns N] [--turn-conversations N] [--api-requests N]
 *   (or BENCH_PARTS, BENCH_LEASE_SECONDS, BENCH_SUBSCRIBERS, BENCH_CONVERSATIONS, BENCH_ROUNDS, BENCH_DELTAS,
 *    BENCH_DELTA_MS, BENCH_KILLS, BENCH_TURNS, BENCH_TURN_CONVERSATIONS, BENCH_API_REQUESTS)
 *   Defaults: all parts, lease 15 s, 1000 subscribers on 5 conversations, 3 rounds of 60 deltas 50 ms apart,
 *   5 kills, 60 turns over 6 conversations, 300 API requests.
 *
 * 1. delivery: N raw SSE subscribers (plain TCP sockets in this process) on a few conversations over three replicas,
 *    every conversation streaming a turn at once. Latency is the event's `createdAt` (taken on the appending replica
 *    just before its transaction) to the moment this process read the bytes that completed the event, split by
 *    whether the subscriber's replica appended the event (A, local) or another did (B, cross). Every stream is
 *    checked against the store afterwards: lost, repeated and out-of-order events are counted.
 * 2. failover: SIGKILL of the replica running a turn while the next message waits in the queue, until that next
 *    turn's first message.delta reaches a client on a survivor; a replacement replica is started after each kill.
 * 3. overhead: one replica against three: short turns across several conversations (messages posted round-robin to
 *    the replicas), GET /api/conversations latency, and what each replica costs at rest.
 *
 * Every part starts its own replicas and database and removes them (also on Ctrl-C). Exits 0 whether or not the
 * targets are met, 1 if a part could not run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ApiClient, type StreamedEvent } from '../test/support/api-client.ts';
import { platformSecret } from '../test/support/platform.ts';
import {
  delay,
  eventually,
  followConversation,
  isRunning,
  processAlive,
  startReplicas,
  turnRuns,
  type Replica,
  type ReplicaSet,
} from '../test/support/replicas.ts';
import { killServer } from '../test/support/server-process.ts';
import { formatBytes, formatMs, percentile, table } from './stats.ts';
import { startModelProcess, type ModelProcess } from './model-process.ts';

const print = (line = ''): void => void process.stdout.write(`${line}\n`);
const progress = (line: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

// ---------------------------------------------------------------------------------------------------
// Options

type Part = 'delivery' | 'failover' | 'overhead';
const allParts: Part[] = ['delivery', 'failover', 'overhead'];

interface BenchOptions {
  parts: Part[];
  leaseSeconds: number;
  subscribers: number;
  conversations: number;
  rounds: number;
  deltas: number;
  deltaMs: number;
  kills: number;
  turns: number;
  turnConversations: number;
  apiRequests: number;
}

function readOptions(argv: string[], env: Record<string, string | undefined>): BenchOptions {
  const names = ['parts', 'lease', 'subscribers', 'conversations', 'rounds', 'deltas', 'delta-ms', 'kills', 'turns', 'turn-conversations', 'api-requests'];
  const { values } = parseArgs({ args: argv, options: Object.fromEntries(names.map((name) => [name, { type: 'string' as const }])) });
  const flag = (name: string): string | undefined => {
    const value = values[name];
    return typeof value === 'string' ? value : env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  };
  const count = (name: string, fallback: number, minimum: number, value = flag(name)): number => {
    if (value === undefined || value === '') return fallback;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < minimum) throw new Error(`--${name} must be an integer ≥ ${minimum}, got ${value}`);
    return parsed;
  };
  const parts = (flag('parts') ?? allParts.join(',')).split(',').map((part) => part.trim()).filter(Boolean);
  for (const part of parts) if (!allParts.includes(part as Part)) throw new Error(`--parts: unknown part ${part} (${allParts.join(', ')})`);
  return {
    parts: parts as Part[],
    leaseSeconds: count('lease', 15, 1, (values.lease as string | undefined) ?? env.BENCH_LEASE_SECONDS),
    subscribers: count('subscribers', 1000, 3),
    conversations: count('conversations', 5, 1),
    rounds: count('rounds', 3, 1),
    deltas: count('deltas', 60, 1),
    deltaMs: count('delta-ms', 50, 0),
    kills: count('kills', 5, 1),
    turns: count('turns', 60, 1),
    turnConversations: count('turn-conversations', 6, 1),
    apiRequests: count('api-requests', 300, 1),
  };
}

// ---------------------------------------------------------------------------------------------------
// The scripted model, in a child process (this file with --model)



// ---------------------------------------------------------------------------------------------------
// Replicas, and cleaning up after them whatever happens

const running = new Set<ReplicaSet>();
/** The replica sets of the part under way, stopped or not: their logs are saved if the part fails. */
let partSets: ReplicaSet[] = [];

async function startCluster(count: number, modelUrl: string, leaseSeconds: number): Promise<ReplicaSet> {
  progress(`starting ${count} replica(s), lease ${leaseSeconds} s`);
  const set = await startReplicas({
    count,
    leaseSeconds,
    drainSeconds: 2,
    env: {
      ANTHROPIC_BASE_URL: modelUrl,
      ANTHROPIC_API_KEY: platformSecret,
      AGENTYARD_MODEL_MAX_RETRIES: '0',
      // A paused sandbox would add its resume to the next turn, depending on how long the benchmark waited.
      AGENTYARD_PAUSE_AFTER_SECONDS: '0',
      AGENTYARD_IDLE_TIMEOUT_SECONDS: '3600',
      // One user holds every stream, conversation and request here: the per-user bounds are lifted, not removed
      // (rate limits are still counted in the store on every request, as in production).
      AGENTYARD_EVENT_STREAMS_PER_USER: '100000',
      AGENTYARD_EVENT_STREAMS_PER_CONVERSATION: '100000',
      AGENTYARD_RATE_LIMIT_PER_USER: '100000000',
      AGENTYARD_RATE_LIMIT_PER_TOKEN: '100000000',
      AGENTYARD_MAX_SANDBOXES_PER_USER: '100',
      AGENTYARD_MAX_QUEUED_PER_USER: '1000',
    },
  });
  running.add(set);
  partSets.push(set);
  progress(`  database ${databaseName(set)}, data directory ${set.dataDir}`);
  return set;
}

/** Writes every replica's whole log to a file (for a run that went wrong), and returns its path. */
function saveLogs(set: ReplicaSet, label: string): string {
  const file = path.join(tmpdir(), `bench-replicas-${label}-${Date.now()}.log`);
  writeFileSync(file, set.replicas.map((replica) => [`=== replica ${replica.id} (pid ${replica.server.child.pid})`, ...replica.server.log].join('\n')).join('\n') + '\n');
  return file;
}

/**
 * What is wrong with the stored events of the conversations' turns: anything of a turn after its turn.ended (a second
 * turn.ended included). Empty when right.
 */
async function turnProblems(set: ReplicaSet, conversationIds: string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const conversationId of conversationIds) {
    const endedAt = new Map<string, number>();
    for (const event of await set.store.listEvents(conversationId)) {
      const turnId = 'turnId' in event.data ? event.data.turnId : null;
      if (turnId === null) continue;
      const end = endedAt.get(turnId);
      if (end !== undefined) {
        const detail = event.data.type === 'turn.ended' ? ` ${event.data.status}` : '';
        problems.push(`${conversationId}: ${event.data.type}${detail} (seq ${event.seq}) of ${turnId} after its turn.ended (seq ${end})`);
      } else if (event.data.type === 'turn.ended') endedAt.set(turnId, event.seq);
    }
  }
  return problems;
}

const databaseName = (set: ReplicaSet): string => new URL(set.databaseUrl).pathname.slice(1);

/** Stops the replicas, then checks that their processes, sandboxes, data directory and database are all gone. */
async function stopCluster(set: ReplicaSet): Promise<void> {
  running.delete(set);
  const replicas = replicaPids(runningReplicas(set));
  const pids = [...replicas, ...descendantsOf(replicas)];
  await set.stop();
  const left = await eventually('the replicas and their sandboxes are gone', () => pids.every((pid) => !processAlive(pid)), { timeoutMs: 10_000 }).then(
    () => [],
    () => pids.filter(processAlive),
  );
  let databaseLeft = false;
  if (process.env.TEST_DATABASE_URL) {
    const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    await client.connect();
    databaseLeft = (await client.query('select 1 from pg_database where datname = $1', [databaseName(set)])).rowCount !== 0;
    await client.end();
  }
  const problems = [
    ...(left.length > 0 ? [`processes still running: ${left.join(', ')}`] : []),
    ...(existsSync(set.dataDir) ? [`data directory ${set.dataDir} left`] : []),
    ...(databaseLeft ? [`database ${databaseName(set)} left`] : []),
  ];
  progress(problems.length === 0 ? `  stopped: ${pids.length} processes gone, data directory and database removed` : `  NOT CLEAN: ${problems.join('; ')}`);
}

function runningReplicas(set: ReplicaSet): Replica[] {
  return set.replicas.filter(isRunning);
}

async function createConversation(client: ApiClient): Promise<string> {
  const created = await client.request('POST', '/api/conversations', {});
  if (created.status !== 201) throw new Error(`POST /api/conversations answered ${created.status}: ${JSON.stringify(created.body)}`);
  return created.body.id as string;
}

async function send(client: ApiClient, conversationId: string, message: string): Promise<string> {
  const sent = await client.request('POST', `/api/conversations/${conversationId}/messages`, { text: message });
  if (sent.status !== 202) throw new Error(`POST messages on ${client.baseUrl} answered ${sent.status}: ${JSON.stringify(sent.body)}`);
  return sent.body.turnId as string;
}

/** The replica that logged `turn started` for the turn. */
async function runnerOf(set: ReplicaSet, turnId: string, timeoutMs = 120_000): Promise<Replica> {
  const run = await eventually(`a replica logs "turn started" for ${turnId}`, () => turnRuns(set.replicas).find((candidate) => candidate.turnId === turnId), {
    timeoutMs,
    context: () => set.describe(10),
  });
  return set.replica(run.replicaId);
}

// ---------------------------------------------------------------------------------------------------
// Process and machine figures from /proc

const clockTicksPerSecond = 100;

/** CPU time (user + system) of one process, ms. */
function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond;
  } catch {
    return Number.NaN;
  }
}

function processRssBytes(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN) * 1024;
  } catch {
    return Number.NaN;
  }
}

/** The machine's CPU counters: busy and total jiffies over all cores. */
function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Busy share of all cores between two readings, as a percentage. */
function busyPercent(before: { busy: number; total: number }, after: { busy: number; total: number }): number {
  return (100 * (after.busy - before.busy)) / Math.max(1, after.total - before.total);
}

function replicaPids(replicas: Replica[]): number[] {
  return replicas.map((replica) => replica.server.child.pid).filter((pid): pid is number => pid !== undefined);
}

/** Which part of the benchmark a process is. */
type ProcessGroup = 'client' | 'replicas' | 'sandboxes' | 'postgres' | 'model';

/**
 * The CPU time so far of every process this benchmark runs, by group: itself (the client), the model, the replicas,
 * their sandboxes (the CLIs) and the PostgreSQL backends serving the replicas' database. The machine is shared: this
 * tells the benchmark's own load from everything else's.
 */
function benchProcessesCpu(set: ReplicaSet): Map<number, { group: ProcessGroup; ms: number }> {
  const database = databaseName(set);
  const backends = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return commandLine.startsWith('postgres: ') && commandLine.includes(` ${database} `);
      } catch {
        return false;
      }
    })
    .map(Number);
  const replicas = replicaPids(runningReplicas(set));
  const sandboxes = new Set(descendantsOf(replicas));
  const groups = new Map<number, ProcessGroup>([[process.pid, 'client']]);
  for (const pid of descendantsOf([process.pid])) groups.set(pid, sandboxes.has(pid) ? 'sandboxes' : 'model');
  for (const pid of replicas) groups.set(pid, 'replicas');
  for (const pid of backends) groups.set(pid, 'postgres');
  return new Map([...groups].map(([pid, group]) => [pid, { group, ms: processCpuMs(pid) }]));
}

/** CPU ms used by each group between two readings of benchProcessesCpu (a process that started meanwhile counts from zero). */
function cpuBetween(before: Map<number, { ms: number }>, after: Map<number, { group: ProcessGroup; ms: number }>): Record<ProcessGroup | 'all', number> {
  const used: Record<ProcessGroup | 'all', number> = { client: 0, replicas: 0, sandboxes: 0, postgres: 0, model: 0, all: 0 };
  for (const [pid, { group, ms }] of after) {
    if (!Number.isFinite(ms)) continue;
    const delta = ms - (before.get(pid)?.ms ?? 0);
    used[group] += delta;
    used.all += delta;
  }
  return used;
}

/** "all 97 % (replicas 36 %, sandboxes 30 %, …)" of the 2 cores. */
function describeOwnCpu(used: Record<ProcessGroup | 'all', number>, wallMs: number): string {
  const share = (ms: number): string => `${((100 * ms) / wallMs / 2).toFixed(0)} %`;
  const groups: ProcessGroup[] = ['replicas', 'sandboxes', 'postgres', 'client', 'model'];
  return `${share(used.all)} (${groups.map((group) => `${group === 'sandboxes' ? 'sandboxes (CLIs)' : group === 'postgres' ? 'PostgreSQL backends' : group} ${share(used[group])}`).join(', ')})`;
}

/** Every process descending from the given ones, from /proc (the model, the replicas, their sandboxes and CLIs). */
function descendantsOf(roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  const found: number[] = [];
  const queue = [...roots];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const child of children.get(pid) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}


/** Established TCP connections from the replicas' processes to the database's port. */
function databaseConnections(set: ReplicaSet): number {
  const port = new URL(set.databaseUrl).port || '5432';
  const pids = new Set(replicaPids(runningReplicas(set)));
  try {
    const output = execFileSync('ss', ['-tnpH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' });
    let count = 0;
    for (const line of output.split('\n')) for (const match of line.matchAll(/pid=(\d+)/g)) if (pids.has(Number(match[1]))) count += 1;
    return count;
  } catch {
    return Number.NaN;
  }
}

const loads = (): string => loadavg().map((value) => value.toFixed(2)).join(' ');

// ---------------------------------------------------------------------------------------------------
// Raw SSE subscribers: the bytes and their arrival times now, the parsing afterwards

const turnEndedMarker = Buffer.from('event: turn.ended\n');

/**
 * One conversation's event stream on a plain TCP socket. While streaming, each chunk is copied to the end of one
 * growing buffer (so that 1,000 streams leave a thousand buffers to the garbage collector, not a hundred thousand)
 * with the time it was read, and is looked at only for the end of a turn (so the benchmark knows when a round is
 * over). Frames are parsed afterwards, so the client's own work while measuring stays small.
 */
class RawSubscriber {
  turnEnds = 0;
  /** Chunks read, and the time spent in the data handler for them (ms). */
  chunkCount = 0;
  handlerMs = 0;
  closedEarly = false;
  private bytes = Buffer.allocUnsafe(32 * 1024);
  private length = 0;
  /** For each chunk: where it ends in `bytes`, and performance.now() when it was read. */
  private chunkEnds = new Float64Array(256);
  private arrivals = new Float64Array(256);
  private socket: Socket | null = null;
  private closing = false;

  constructor(
    readonly replica: Replica,
    readonly conversationId: string,
    readonly after: number,
  ) {}

  /** Connects and resolves once the response head (200) is in; rejects on anything else. */
  open(token: string): Promise<void> {
    const url = new URL(this.replica.url);
    const request = [
      `GET /api/conversations/${this.conversationId}/events HTTP/1.1`,
      `host: ${url.host}`,
      'accept: text/event-stream',
      `authorization: Bearer ${token}`,
      `last-event-id: ${this.after}`,
      '',
      '',
    ].join('\r\n');
    return new Promise((resolve, reject) => {
      const socket = connect({ host: url.hostname, port: Number(url.port) });
      this.socket = socket;
      socket.setNoDelay(true);
      let answered = false;
      socket.on('data', (chunk: Buffer) => {
        const at = performance.now();
        const before = this.length;
        this.keep(chunk, at);
        if (!answered) {
          const headEnd = this.bytes.subarray(0, this.length).indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          answered = true;
          const head = this.bytes.subarray(0, headEnd).toString('latin1');
          if (!head.startsWith('HTTP/1.1 200')) {
            reject(new Error(`event stream on ${this.replica.id} answered: ${this.bytes.subarray(0, Math.min(this.length, 400)).toString('latin1')}`));
            socket.destroy();
            return;
          }
          resolve();
        }
        // A marker may straddle two chunks: look from just before this chunk.
        const recent = this.bytes.subarray(Math.max(0, before - turnEndedMarker.length + 1), this.length);
        for (let found = recent.indexOf(turnEndedMarker); found >= 0; found = recent.indexOf(turnEndedMarker, found + 1)) this.turnEnds += 1;
        this.handlerMs += performance.now() - at;
      });
      socket.on('error', (error) => {
        if (!answered) reject(error);
      });
      socket.once('close', () => {
        if (!this.closing) this.closedEarly = true;
        if (!answered) reject(new Error(`event stream on ${this.replica.id} closed before answering`));
      });
      socket.write(request);
    });
  }

  close(): void {
    this.closing = true;
    this.socket?.destroy();
  }

  /** Everything read, with where each chunk ends and when it was read (performance.now()). */
  received(): { bytes: Buffer; chunkEnds: Float64Array; arrivals: Float64Array } {
    return {
      bytes: this.bytes.subarray(0, this.length),
      chunkEnds: this.chunkEnds.subarray(0, this.chunkCount),
      arrivals: this.arrivals.subarray(0, this.chunkCount),
    };
  }

  /** Lets the memory go once parsed. */
  forget(): void {
    this.bytes = Buffer.alloc(0);
    this.length = 0;
  }

  private keep(chunk: Buffer, at: number): void {
    if (this.length + chunk.length > this.bytes.length) {
      const larger = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.length + chunk.length));
      this.bytes.copy(larger, 0, 0, this.length);
      this.bytes = larger;
    }
    chunk.copy(this.bytes, this.length);
    this.length += chunk.length;
    if (this.chunkCount === this.chunkEnds.length) {
      const ends = new Float64Array(this.chunkEnds.length * 2);
      ends.set(this.chunkEnds);
      this.chunkEnds = ends;
      const arrivals = new Float64Array(this.arrivals.length * 2);
      arrivals.set(this.arrivals);
      this.arrivals = arrivals;
    }
    this.chunkEnds[this.chunkCount] = this.length;
    this.arrivals[this.chunkCount] = at;
    this.chunkCount += 1;
  }
}

interface ReceivedEvent {
  seq: number;
  type: string;
  turnId: string | null;
  createdAt: string;
  /** Epoch ms (fractional) when the bytes that completed the event were read. */
  arrivedAt: number;
}

/** The events of a subscriber's stream with their arrival times: HTTP chunked encoding undone, SSE frames parsed. */
function parseSubscriber(subscriber: RawSubscriber): ReceivedEvent[] {
  const { bytes: raw, chunkEnds, arrivals } = subscriber.received();
  const arrivalOf = (rawOffset: number): number => {
    let low = 0;
    let high = chunkEnds.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (chunkEnds[middle]! > rawOffset) high = middle;
      else low = middle + 1;
    }
    return performance.timeOrigin + arrivals[low]!;
  };

  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) return [];
  const chunked = /\r\ntransfer-encoding:\s*chunked/i.test(raw.subarray(0, headEnd).toString('latin1'));
  // The body's pieces, each with where it starts in the raw bytes.
  const pieces: Array<{ rawStart: number; bytes: Buffer }> = [];
  if (chunked) {
    let position = headEnd + 4;
    for (;;) {
      const lineEnd = raw.indexOf('\r\n', position);
      if (lineEnd < 0) break;
      const size = Number.parseInt(raw.subarray(position, lineEnd).toString('latin1'), 16);
      if (!Number.isFinite(size) || size === 0) break;
      const start = lineEnd + 2;
      pieces.push({ rawStart: start, bytes: raw.subarray(start, Math.min(raw.length, start + size)) });
      if (start + size > raw.length) break;
      position = start + size + 2;
    }
  } else {
    pieces.push({ rawStart: headEnd + 4, bytes: raw.subarray(headEnd + 4) });
  }
  const body = Buffer.concat(pieces.map((piece) => piece.bytes));
  const pieceStarts: number[] = [];
  let decoded = 0;
  for (const piece of pieces) {
    pieceStarts.push(decoded);
    decoded += piece.bytes.length;
  }

  const events: ReceivedEvent[] = [];
  let start = 0;
  let pieceHint = 0;
  for (;;) {
    const end = body.indexOf('\n\n', start);
    if (end < 0) break;
    const frame = body.subarray(start, end).toString('utf8');
    start = end + 2;
    let id: number | null = null;
    let type = 'message';
    let data = '';
    for (const line of frame.split('\n')) {
      if (line.startsWith('id: ')) id = Number(line.slice(4));
      else if (line.startsWith('event: ')) type = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (id === null || !data) continue;
    // The frame is complete once its last byte (the second newline) has arrived; frames come in order, so the piece
    // holding that byte is found by moving forward.
    while (pieceHint + 1 < pieceStarts.length && pieceStarts[pieceHint + 1]! <= end + 1) pieceHint += 1;
    const rawEnd = pieces[pieceHint]!.rawStart + (end + 1 - pieceStarts[pieceHint]!);
    const parsed = JSON.parse(data) as { createdAt: string; turnId?: string };
    events.push({ seq: id, type, turnId: parsed.turnId ?? null, createdAt: parsed.createdAt, arrivedAt: arrivalOf(rawEnd) });
  }
  return events;
}

// ---------------------------------------------------------------------------------------------------
// Figures

interface Spread {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

function spread(samples: number[]): Spread {
  const sorted = Float64Array.from(samples).sort();
  const list = Array.from(sorted);
  return { n: list.length, p50: percentile(list, 50), p95: percentile(list, 95), p99: percentile(list, 99), max: list.at(-1) ?? Number.NaN };
}

const median = (values: number[]): number => percentile([...values].sort((a, b) => a - b), 50);
const verdict = (met: boolean): string => (met ? 'MET' : 'NOT MET');
const seconds = (ms: number): string => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : '-');

// ---------------------------------------------------------------------------------------------------
// Part 1: delivery latency, local against cross-replica

async function deliveryPart(options: BenchOptions, model: ModelProcess): Promise<void> {
  const set = await startCluster(3, model.url, options.leaseSeconds);
  const subscribers: RawSubscriber[] = [];
  try {
    const [r1] = set.replicas as [Replica];
    const user = await new ApiClient(r1.url).registerWithToken('delivery@example.com');
    const token = (user.auth as { token: string }).token;
    const via = (replica: Replica): ApiClient => new ApiClient(replica.url, user.auth);

    // Each conversation's warm-up turn starts its sandbox and CLI on replica i mod 3, which then keeps the lease (its
    // CLI stays live) and runs the measured turns, wherever their messages are posted.
    progress(`delivery: ${options.conversations} conversations, warm-up turns`);
    const conversations = await Promise.all(
      Array.from({ length: options.conversations }, async (_, index) => {
        const home = set.replicas[index % 3]!;
        const id = await createConversation(via(home));
        const turnId = await send(via(home), id, 'warm-up');
        // Its completed end (a turn can show an earlier, spurious end: see the store check below).
        const completed = (event: StreamedEvent): boolean => event.event === 'turn.ended' && event.data.turnId === turnId && event.data.status === 'completed';
        const events = await via(home).readEvents(id, { until: (seen) => seen.some(completed), timeoutMs: 180_000 });
        return { id, home, lastSeq: events.at(-1)!.id ?? 0 };
      }),
    );
    for (const conversation of conversations) {
      const warmUp = turnRuns(set.replicas).find((run) => run.conversationId === conversation.id);
      if (warmUp?.replicaId !== conversation.home.id) throw new Error(`the warm-up turn of ${conversation.id} ran on ${warmUp?.replicaId}, not ${conversation.home.id}`);
    }

    progress(`delivery: opening ${options.subscribers} event streams`);
    for (let index = 0; index < options.subscribers; index += 1) {
      const conversation = conversations[index % conversations.length]!;
      const replica = set.replicas[Math.floor(index / conversations.length) % 3]!;
      subscribers.push(new RawSubscriber(replica, conversation.id, conversation.lastSeq));
    }
    for (let first = 0; first < subscribers.length; first += 50) {
      await Promise.all(subscribers.slice(first, first + 50).map((subscriber) => subscriber.open(token)));
    }
    await delay(1000);

    // Measured: every conversation streams a turn at once, `rounds` times; each message goes to a replica in turn,
    // so turn.queued is appended by all three.
    const message = `STREAM ${options.deltas}x${options.deltaMs}`;
    const postedVia = new Map<string, Replica>();
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    const pids = replicaPids(set.replicas);
    const cpuBefore = { bench: process.cpuUsage(), replicas: pids.map(processCpuMs), all: benchProcessesCpu(set), machine: machineCpu(), at: performance.now() };
    const gcPauses: number[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) gcPauses.push(entry.duration);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    loopDelay.enable();
    for (let round = 1; round <= options.rounds; round += 1) {
      progress(`delivery: round ${round} of ${options.rounds}`);
      await Promise.all(
        conversations.map(async (conversation, index) => {
          const replica = set.replicas[(index + round) % 3]!;
          postedVia.set(await send(via(replica), conversation.id, message), replica);
        }),
      );
      await eventually(`every subscriber sees round ${round}'s turn end`, () => subscribers.every((subscriber) => subscriber.turnEnds >= round || subscriber.closedEarly), {
        timeoutMs: 180_000,
        intervalMs: 50,
        context: () => `${subscribers.filter((subscriber) => subscriber.turnEnds < round).length} subscribers behind\n${set.describe(10)}`,
      });
    }
    loopDelay.disable();
    gcObserver.disconnect();
    const wallMs = performance.now() - cpuBefore.at;
    const benchCpu = process.cpuUsage(cpuBefore.bench);
    const replicaCpu = pids.map((pid, index) => processCpuMs(pid) - cpuBefore.replicas[index]!);
    const machineBusy = busyPercent(cpuBefore.machine, machineCpu());
    const ownCpu = describeOwnCpu(cpuBetween(cpuBefore.all, benchProcessesCpu(set)), wallMs);
    for (const subscriber of subscribers) subscriber.close();

    // Afterwards: parse, compare with the store, split local from cross.
    progress('delivery: checking every stream against the store');
    const runs = turnRuns(set.replicas);
    const runnerOfTurn = new Map(runs.map((run) => [run.turnId, run.replicaId]));
    const stored = new Map<string, Map<number, string>>();
    for (const conversation of conversations) {
      const events = await set.store.listEvents(conversation.id, { afterSeq: conversation.lastSeq });
      stored.set(conversation.id, new Map(events.map((event) => [event.seq, event.data.type])));
    }
    const local: number[] = [];
    const cross: number[] = [];
    /** Per event (conversation and seq): when it was appended, and its arrival times on the appending replica and on the others. */
    const perEvent = new Map<string, { appendedAt: number; local: number[]; cross: number[] }>();
    let delivered = 0;
    let lost = 0;
    let repeated = 0;
    let outOfOrder = 0;
    let mismatched = 0;
    let handlerMs = 0;
    let chunks = 0;
    for (const subscriber of subscribers) {
      handlerMs += subscriber.handlerMs;
      chunks += subscriber.chunkCount;
      const expected = stored.get(subscriber.conversationId)!;
      const received = parseSubscriber(subscriber);
      subscriber.forget();
      const seen = new Set<number>();
      let previous = subscriber.after;
      for (const event of received) {
        delivered += 1;
        if (seen.has(event.seq)) repeated += 1;
        if (event.seq <= previous) outOfOrder += 1;
        previous = Math.max(previous, event.seq);
        seen.add(event.seq);
        if (expected.get(event.seq) !== event.type) mismatched += 1;
        const appender = event.type === 'turn.queued' ? postedVia.get(event.turnId ?? '')?.id : runnerOfTurn.get(event.turnId ?? '');
        const appendedAt = Date.parse(event.createdAt);
        const isLocal = appender === subscriber.replica.id;
        (isLocal ? local : cross).push(event.arrivedAt - appendedAt);
        const key = `${subscriber.conversationId} ${event.seq}`;
        const entry = perEvent.get(key) ?? { appendedAt, local: [], cross: [] };
        (isLocal ? entry.local : entry.cross).push(event.arrivedAt);
        perEvent.set(key, entry);
      }
      for (const seq of expected.keys()) if (!seen.has(seq)) lost += 1;
    }
    const perEventFigures = { crossMinusLocal: [] as number[], firstLocal: [] as number[], firstCross: [] as number[], fanOutLocal: [] as number[], fanOutCross: [] as number[] };
    for (const entry of perEvent.values()) {
      if (entry.local.length === 0 || entry.cross.length === 0) continue;
      perEventFigures.crossMinusLocal.push(median(entry.cross) - median(entry.local));
      perEventFigures.firstLocal.push(Math.min(...entry.local) - entry.appendedAt);
      perEventFigures.firstCross.push(Math.min(...entry.cross) - entry.appendedAt);
      perEventFigures.fanOutLocal.push(Math.max(...entry.local) - Math.min(...entry.local));
      perEventFigures.fanOutCross.push(Math.max(...entry.cross) - Math.min(...entry.cross));
    }
    const storedProblems = await turnProblems(set, conversations.map((conversation) => conversation.id));
    const storedTotal = [...stored.values()].reduce((sum, events) => sum + events.size, 0);
    const eventsPerTurn = storedTotal / (options.conversations * options.rounds);
    const localSpread = spread(local);
    const crossSpread = spread(cross);
    const lag = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
    const cut = subscribers.filter((subscriber) => subscriber.closedEarly).length;

    print();
    print(`Part 1: delivery latency with ${options.subscribers} SSE subscribers on ${options.conversations} conversations over 3 replicas`);
    print(
      `  ${options.rounds} rounds; in each, every conversation streams a turn at once (${options.deltas} text deltas ${options.deltaMs} ms apart, ${eventsPerTurn.toFixed(0)} events per turn): ` +
        `~${Math.round((options.conversations * 1000) / Math.max(1, options.deltaMs))} events/s appended while streaming, ` +
        `${Math.round((delivered / wallMs) * 1000)} frames/s delivered on average over ${seconds(wallMs)}`,
    );
    print(`  each conversation's turns run on one replica (A); its subscribers are spread evenly over the three (${Math.round(options.subscribers / options.conversations / 3)} per replica and conversation)`);
    print('  latency: the event’s createdAt (set by the appending replica just before its transaction) → this process read the bytes completing it');
    print();
    print(
      table([
        ['subscribers on', 'samples', 'p50', 'p95', 'p99', 'max'],
        ['A: the appending replica (local)', String(localSpread.n), formatMs(localSpread.p50), formatMs(localSpread.p95), formatMs(localSpread.p99), formatMs(localSpread.max)],
        ['B: another replica (cross)', String(crossSpread.n), formatMs(crossSpread.p50), formatMs(crossSpread.p95), formatMs(crossSpread.p99), formatMs(crossSpread.max)],
        ['per event:', '', '', '', '', ''],
        ...(
          [
            ['  append → its first subscriber on A', perEventFigures.firstLocal],
            ['  append → its first subscriber on B', perEventFigures.firstCross],
            ['  first → last subscriber on A (fan-out)', perEventFigures.fanOutLocal],
            ['  first → last subscriber on B (fan-out, both others)', perEventFigures.fanOutCross],
            ['  B − A (median arrival on B − on A)', perEventFigures.crossMinusLocal],
          ] as const
        ).map(([label, samples]) => {
          const figures = spread(samples);
          return [label, String(figures.n), formatMs(figures.p50), formatMs(figures.p95), formatMs(figures.p99), formatMs(figures.max)];
        }),
      ]),
    );
    print();
    print(
      `  events: ${delivered} delivered to ${options.subscribers} subscribers (${storedTotal} appended × their subscribers = ${subscribers.reduce((sum, subscriber) => sum + stored.get(subscriber.conversationId)!.size, 0)} expected); ` +
        `lost ${lost}, repeated ${repeated}, out of order ${outOfOrder}, not as stored ${mismatched}; streams cut ${cut}; ` +
        `stored events of a turn after its end: ${storedProblems.length}`,
    );
    for (const problem of storedProblems.slice(0, 5)) print(`    ${problem}`);
    if (storedProblems.length > 0) print(`    the replicas' logs are in ${saveLogs(set, 'delivery')}`);
    print(
      `  client (this process, all ${options.subscribers} sockets): ${((handlerMs / chunks) * 1000).toFixed(1)} µs per chunk read in its handler (${chunks} chunks, ` +
        `${(((benchCpu.user + benchCpu.system) / 1000 / wallMs) * 100).toFixed(0)} % of a core in all); its event-loop delay p50 ${formatMs(lag.p50)}, ` +
        `p99 ${formatMs(lag.p99)}, max ${formatMs(lag.max)} (how long a readable socket may wait for it, included in every row); ` +
        `garbage collection ${gcPauses.length} pauses, ${formatMs(gcPauses.reduce((sum, pause) => sum + pause, 0))} in all, longest ${formatMs(Math.max(0, ...gcPauses))}`,
    );
    print(
      `  replicas' CPU over the run: ${pids.map((_, index) => `${set.replicas[index]!.id} ${((replicaCpu[index]! / wallMs) * 100).toFixed(0)} %`).join(', ')} of a core; ` +
        `machine ${machineBusy.toFixed(0)} % busy of 2 cores, of which this benchmark's processes ${ownCpu}; load average ${loads()}`,
    );
    print(`  target: cross-replica p99 ≤ 50 ms at ${options.subscribers} subscribers: ${formatMs(crossSpread.p99)} → ${verdict(crossSpread.p99 <= 50)}`);
    print(
      `  target: zero lost or repeated events: ${lost} lost, ${repeated} repeated → ${verdict(lost === 0 && repeated === 0 && outOfOrder === 0 && mismatched === 0 && storedProblems.length === 0)}`,
    );
  } finally {
    for (const subscriber of subscribers) subscriber.close();
    await stopCluster(set);
  }
}

// ---------------------------------------------------------------------------------------------------
// Part 2: failover after SIGKILL

interface Failover {
  victim: string;
  successor: string;
  leaseLeftMs: number;
  toTakeoverMs: number;
  takeoverToStartMs: number;
  startToTextMs: number;
  toFirstTextMs: number;
  lostTurn: string;
}

async function failoverPart(options: BenchOptions, model: ModelProcess): Promise<void> {
  const set = await startCluster(3, model.url, options.leaseSeconds);
  const results: Failover[] = [];
  const problems: string[] = [];
  let logs: string | null = null;
  try {
    const user = await new ApiClient(set.replicas[0]!.url).registerWithToken('failover@example.com');
    const via = (replica: Replica): ApiClient => new ApiClient(replica.url, user.auth);
    let nextId = set.replicas.length + 1;
    for (let kill = 1; kill <= options.kills; kill += 1) {
      const live = runningReplicas(set);
      const home = live[kill % live.length]!;
      const conversationId = await createConversation(via(home));
      // A long turn (40 s of deltas): still running when its replica is killed.
      const first = await send(via(home), conversationId, 'STREAM 400x100');
      const victim = await runnerOf(set, first);
      const survivors = live.filter((replica) => replica !== victim);
      let queued: string | null = null;
      let firstTextAt: number | null = null;
      let scanned = 0;
      const follower = followConversation({
        conversationId,
        auth: user.auth,
        replicas: survivors,
        timeoutMs: options.leaseSeconds * 1000 + 180_000,
        until: (events: StreamedEvent[]) => {
          if (queued === null) return false;
          for (; scanned < events.length; scanned += 1) {
            const event = events[scanned]!;
            if (event.event === 'message.delta' && event.data.turnId === queued) firstTextAt ??= Date.now();
          }
          return events.some((event) => event.event === 'turn.ended' && event.data.turnId === queued);
        },
      });
      await follower.connected;
      await eventually('the running turn streams on a survivor', () => follower.events.filter((event) => event.event === 'message.delta').length >= 3, {
        timeoutMs: 120_000,
        context: () => follower.describe(),
      });
      queued = await send(via(survivors[0]!), conversationId, 'after the kill');
      // The message's wake made the holder claim its lease again, just now. A crash comes at any moment of the holder's
      // renewal period (lease/3), so the kill does too.
      await delay(Math.random() * ((options.leaseSeconds * 1000) / 3));
      const leaseAtKill = await set.store.getLease(conversationId);
      progress(`failover ${kill}/${options.kills}: SIGKILL ${victim.id} (holds ${conversationId})`);
      const killedAt = Date.now();
      await killServer(victim.server, 'SIGKILL');
      await follower.done;
      const events = follower.events;
      const lostEnd = events.find((event) => event.event === 'turn.ended' && event.data.turnId === first);
      const queuedRun = turnRuns(set.replicas).find((run) => run.turnId === queued);
      const takeover = takeoverTime(set, conversationId);
      results.push({
        victim: victim.id,
        successor: queuedRun?.replicaId ?? '?',
        leaseLeftMs: leaseAtKill && leaseAtKill.replicaId === victim.id ? Date.parse(leaseAtKill.expiresAt) - killedAt : Number.NaN,
        toTakeoverMs: takeover - killedAt,
        takeoverToStartMs: (queuedRun?.startedAt ?? Number.NaN) - takeover,
        startToTextMs: (firstTextAt ?? Number.NaN) - (queuedRun?.startedAt ?? Number.NaN),
        toFirstTextMs: (firstTextAt ?? Number.NaN) - killedAt,
        lostTurn: lostEnd ? `${lostEnd.data.status} ${lostEnd.data.error?.code ?? ''}`.trim() : 'no end',
      });
      // The replacement starts once the failover is over: a replica starting on this host takes a dead one's leases at
      // once (its process is known gone), which would measure the restart instead of the survivors.
      const replacement = `r${nextId++}`;
      progress(`failover ${kill}/${options.kills}: ${seconds(results.at(-1)!.toFirstTextMs)} to first text; starting ${replacement}`);
      await set.add(replacement);
      const found = await turnProblems(set, [conversationId]);
      problems.push(...found);
      if (found.length > 0) logs ??= saveLogs(set, 'failover');
      // Frees the successor's CLI before the next round.
      const successor = queuedRun ? set.replica(queuedRun.replicaId) : survivors[0]!;
      await via(successor).request('DELETE', `/api/conversations/${conversationId}`);
    }
  } finally {
    await stopCluster(set);
  }

  const lease = options.leaseSeconds * 1000;
  print();
  print(`Part 2: failover, SIGKILL of the replica running a turn (a message queued behind it) → that message's first text on a survivor; lease ${options.leaseSeconds} s`);
  print('  the kill comes at a random moment of the holder’s renewal period (it renews every lease/3), after the next message was queued on a survivor');
  print('  lease left: until the killed replica’s lease would have expired; takeover: a survivor’s "took the conversation over" log line');
  print();
  const row = (label: string, pick: (result: Failover) => number): string[] => [label, ...results.map((result) => seconds(pick(result))), seconds(median(results.map(pick)))];
  print(
    table([
      ['kill', ...results.map((_, index) => String(index + 1)), 'p50'],
      ['killed → survivor', ...results.map((result) => `${result.victim}→${result.successor}`), ''],
      row('lease left at the kill', (result) => result.leaseLeftMs),
      row('kill → takeover', (result) => result.toTakeoverMs),
      row('takeover → turn started', (result) => result.takeoverToStartMs),
      row('turn started → first text', (result) => result.startToTextMs),
      row('kill → first text', (result) => result.toFirstTextMs),
      ['the killed turn ended', ...results.map((result) => result.lostTurn), ''],
    ]),
  );
  const p50 = median(results.map((result) => result.toFirstTextMs));
  const worst = Math.max(...results.map((result) => result.toFirstTextMs));
  print();
  print(`  stored events of a turn after its end: ${problems.length}`);
  for (const problem of problems.slice(0, 5)) print(`    ${problem}`);
  if (logs) print(`    the replicas' logs are in ${logs}`);
  print(`  target: failover to first text ≤ lease + 3 s = ${seconds(lease + 3000)}: p50 ${seconds(p50)} → ${verdict(p50 <= lease + 3000)}; worst ${seconds(worst)} → ${verdict(worst <= lease + 3000)}`);
  print(`  load average ${loads()}`);
}

/** When a survivor logged taking the conversation over (epoch ms), or NaN. */
function takeoverTime(set: ReplicaSet, conversationId: string): number {
  for (const replica of set.replicas) {
    for (const line of replica.server.log) {
      if (!line.includes('took the conversation over') || !line.includes(conversationId)) continue;
      const entry = JSON.parse(line) as { time?: number };
      return Number(entry.time);
    }
  }
  return Number.NaN;
}

// ---------------------------------------------------------------------------------------------------
// Part 3: one replica against three

interface TurnTiming {
  turnId: string;
  /** `completed`, or the status and error code it ended with. */
  outcome: string;
  /** The error's message, for a turn that did not complete. */
  detail: string | null;
  startedMs: number;
  firstDeltaMs: number;
  endedMs: number;
}

interface OverheadFigures {
  replicas: number;
  idleCpuMsPerSecond: number;
  rssEach: number[];
  databaseConnections: number;
  apiIdle: number[];
  apiLoaded: number[];
  coldWallMs: number;
  cold: TurnTiming[];
  warmWallMs: number;
  warm: TurnTiming[];
  warmMachineBusy: number;
  /** The benchmark's own processes' share of the 2 cores during the warm turns, %. */
  warmOwnBusy: number;
  warmReplicaCpuMs: number;
  /** Stored events of a turn after its end. */
  problems: string[];
  /** Where the replicas' logs were saved when a turn did not complete or the store shows a problem, else null. */
  logs: string | null;
}

/**
 * Runs `turns` turns one after the other in a conversation: each message is posted (to `nextReplica()`) once the
 * previous turn has ended, as seen on one event stream on `streamOn`.
 */
async function driveConversation(user: ApiClient, conversation: { id: string; lastSeq: number }, turns: number, streamOn: Replica, nextReplica: () => Replica): Promise<TurnTiming[]> {
  const timings: TurnTiming[] = [];
  const posts: Promise<string>[] = [];
  let current: { postedAt: number; startedAt: number | null; firstDeltaAt: number | null } | null = null;
  const post = (): void => {
    current = { postedAt: performance.now(), startedAt: null, firstDeltaAt: null };
    const sent = send(new ApiClient(nextReplica().url, user.auth), conversation.id, `turn ${timings.length + 1}`);
    sent.catch(() => undefined);
    posts.push(sent);
  };
  const endedTurns: string[] = [];
  const ended = new Set<string>();
  const events = await new ApiClient(streamOn.url, user.auth).readEvents(conversation.id, {
    after: conversation.lastSeq,
    timeoutMs: 600_000,
    until: (seen) => {
      const now = performance.now();
      if (current === null) {
        post();
        return false;
      }
      const latest = seen.at(-1);
      // Anything of a turn that has ended already is not the current turn's (the store check reports it).
      if (latest && ended.has(latest.data.turnId as string)) return false;
      const turn = current as { postedAt: number; startedAt: number | null; firstDeltaAt: number | null };
      if (latest?.event === 'turn.started') turn.startedAt ??= now;
      if (latest?.event === 'message.delta') turn.firstDeltaAt ??= now;
      if (latest?.event === 'turn.ended') {
        // A turn that did not complete is counted and reported, not retried: the next message goes on as a user's would.
        endedTurns.push(latest.data.turnId as string);
        ended.add(latest.data.turnId as string);
        timings.push({
          turnId: latest.data.turnId as string,
          outcome: latest.data.status === 'completed' ? 'completed' : `${latest.data.status} ${latest.data.error?.code ?? ''}`.trim(),
          detail: latest.data.status === 'completed' ? null : String(latest.data.error?.message ?? '').slice(0, 300),
          startedMs: (turn.startedAt ?? Number.NaN) - turn.postedAt,
          firstDeltaMs: (turn.firstDeltaAt ?? Number.NaN) - turn.postedAt,
          endedMs: now - turn.postedAt,
        });
        if (timings.length === turns) return true;
        post();
      }
      return false;
    },
  });
  const turnIds = await Promise.all(posts);
  if (turnIds.join() !== endedTurns.join()) throw new Error(`the turns that ended (${endedTurns.join()}) are not those posted (${turnIds.join()})`);
  conversation.lastSeq = events.at(-1)?.id ?? conversation.lastSeq;
  return timings;
}

async function timeApiRequests(user: ApiClient, replicas: Replica[], keepGoing: (done: number) => boolean, pauseMs: number): Promise<number[]> {
  const samples: number[] = [];
  for (let index = 0; keepGoing(index); index += 1) {
    const client = new ApiClient(replicas[index % replicas.length]!.url, user.auth);
    const startedAt = performance.now();
    const answer = await client.request('GET', '/api/conversations');
    samples.push(performance.now() - startedAt);
    if (answer.status !== 200) throw new Error(`GET /api/conversations answered ${answer.status}`);
    if (pauseMs > 0) await delay(pauseMs);
  }
  return samples;
}

async function overheadRun(count: number, options: BenchOptions, model: ModelProcess): Promise<OverheadFigures> {
  const set = await startCluster(count, model.url, options.leaseSeconds);
  try {
    const replicas = set.replicas;
    const user = await new ApiClient(replicas[0]!.url).registerWithToken(`overhead${count}@example.com`);
    const pids = replicaPids(replicas);

    progress(`overhead, ${count} replica(s): at rest for 10 s`);
    await delay(2000);
    const restBefore = pids.map(processCpuMs);
    await delay(10_000);
    const idleCpuMsPerSecond = pids.reduce((sum, pid, index) => sum + processCpuMs(pid) - restBefore[index]!, 0) / 10;
    const rssEach = pids.map(processRssBytes);
    const connections = databaseConnections(set);

    progress(`overhead, ${count} replica(s): ${options.apiRequests} × GET /api/conversations at rest`);
    await timeApiRequests(user, replicas, (done) => done < 20, 0);
    const apiIdle = await timeApiRequests(user, replicas, (done) => done < options.apiRequests, 0);

    let rotation = 0;
    const nextReplica = (): Replica => replicas[rotation++ % replicas.length]!;
    const conversations: Array<{ id: string; lastSeq: number }> = [];
    for (let index = 0; index < options.turnConversations; index += 1) conversations.push({ id: await createConversation(new ApiClient(nextReplica().url, user.auth)), lastSeq: 0 });

    progress(`overhead, ${count} replica(s): ${conversations.length} first turns at once (sandbox + CLI start)`);
    const coldStarted = performance.now();
    const cold = (await Promise.all(conversations.map((conversation, index) => driveConversation(user, conversation, 1, replicas[index % replicas.length]!, nextReplica)))).flat();
    const coldWallMs = performance.now() - coldStarted;

    const perConversation = Math.max(1, Math.round(options.turns / conversations.length));
    progress(`overhead, ${count} replica(s): ${perConversation * conversations.length} short turns over ${conversations.length} conversations, GET /api/conversations meanwhile`);
    let warmDone = false;
    const machineBefore = machineCpu();
    const cpuBefore = pids.map(processCpuMs);
    const ownBefore = benchProcessesCpu(set);
    const warmStarted = performance.now();
    const loaded = timeApiRequests(user, replicas, () => !warmDone, 50);
    // Awaited after the turns; a failure meanwhile must not count as unhandled.
    loaded.catch(() => undefined);
    const warm = (
      await Promise.all(conversations.map((conversation, index) => driveConversation(user, conversation, perConversation, replicas[index % replicas.length]!, nextReplica)))
    ).flat();
    const warmWallMs = performance.now() - warmStarted;
    const warmOwnBusy = (100 * cpuBetween(ownBefore, benchProcessesCpu(set)).all) / warmWallMs / 2;
    const warmMachineBusy = busyPercent(machineBefore, machineCpu());
    warmDone = true;
    const apiLoaded = await loaded;
    const incomplete = [...cold, ...warm].some((turn) => turn.outcome !== 'completed');
    const problems = await turnProblems(set, conversations.map((conversation) => conversation.id));
    return {
      problems,
      logs: incomplete || problems.length > 0 ? saveLogs(set, `overhead-${count}`) : null,
      replicas: count,
      idleCpuMsPerSecond,
      rssEach,
      databaseConnections: connections,
      apiIdle,
      apiLoaded,
      coldWallMs,
      cold,
      warmWallMs,
      warm,
      warmMachineBusy,
      warmOwnBusy,
      warmReplicaCpuMs: pids.reduce((sum, pid, index) => sum + processCpuMs(pid) - cpuBefore[index]!, 0),
    };
  } finally {
    await stopCluster(set);
  }
}

async function overheadPart(options: BenchOptions, model: ModelProcess): Promise<void> {
  const runs: OverheadFigures[] = [];
  for (const count of [1, 3]) runs.push(await overheadRun(count, options, model));
  const cells = (pick: (figures: OverheadFigures) => string): string[] => runs.map(pick);
  const completed = (turns: TurnTiming[]): TurnTiming[] => turns.filter((turn) => turn.outcome === 'completed');
  /** p50 / p95 of one measure over the completed turns. */
  const spreadOf = (turns: TurnTiming[], measure: (turn: TurnTiming) => number): string => {
    const values = completed(turns).map(measure).sort((a, b) => a - b);
    return `${formatMs(percentile(values, 50))} / ${formatMs(percentile(values, 95))}`;
  };
  const apiSpread = (values: number[]): string => {
    const sorted = [...values].sort((a, b) => a - b);
    return `${formatMs(percentile(sorted, 50))} / ${formatMs(percentile(sorted, 99))}`;
  };
  const notCompleted = (turns: TurnTiming[]): string => {
    const failed = turns.filter((turn) => turn.outcome !== 'completed');
    return failed.length === 0 ? '0' : `${failed.length} (${[...new Set(failed.map((turn) => turn.outcome))].join(', ')})`;
  };
  print();
  print(`Part 3: one replica against three on this machine (2 cores), ${options.turnConversations} conversations, each message posted to the next replica in turn`);
  print('  (with three, most messages reach a replica that does not hold the conversation: it stores the turn and wakes the holder)');
  print();
  print(
    table([
      ['', ...runs.map((figures) => `${figures.replicas} replica${figures.replicas > 1 ? 's' : ''}`)],
      [`cold: ${options.turnConversations} first turns at once (sandbox + CLI start), wall`, ...cells((figures) => seconds(figures.coldWallMs))],
      ['  POST → first delta p50 / p95', ...cells((figures) => spreadOf(figures.cold, (turn) => turn.firstDeltaMs))],
      ['  POST → turn.ended p50 / p95', ...cells((figures) => spreadOf(figures.cold, (turn) => turn.endedMs))],
      [`warm: ${runs[0]!.warm.length} short turns, ${options.turnConversations} conversations at once, wall`, ...cells((figures) => seconds(figures.warmWallMs))],
      ['  throughput (completed turns)', ...cells((figures) => `${((completed(figures.warm).length / figures.warmWallMs) * 1000).toFixed(2)} turns/s`)],
      ['  POST → turn.started p50 / p95', ...cells((figures) => spreadOf(figures.warm, (turn) => turn.startedMs))],
      ['  POST → first delta p50 / p95', ...cells((figures) => spreadOf(figures.warm, (turn) => turn.firstDeltaMs))],
      ['  POST → turn.ended p50 / p95', ...cells((figures) => spreadOf(figures.warm, (turn) => turn.endedMs))],
      ['  replicas’ CPU per turn (their own processes)', ...cells((figures) => formatMs(figures.warmReplicaCpuMs / figures.warm.length))],
      ['  machine busy (2 cores): all / this benchmark’s processes', ...cells((figures) => `${figures.warmMachineBusy.toFixed(0)} % / ${figures.warmOwnBusy.toFixed(0)} %`)],
      ['turns not completed (cold + warm)', ...cells((figures) => notCompleted([...figures.cold, ...figures.warm]))],
      ['stored events of a turn after its end', ...cells((figures) => String(figures.problems.length))],
      [`GET /api/conversations at rest (${options.apiRequests}) p50 / p99`, ...cells((figures) => apiSpread(figures.apiIdle))],
      ['GET /api/conversations during the warm turns p50 / p99', ...cells((figures) => `${apiSpread(figures.apiLoaded)} (${figures.apiLoaded.length})`)],
      ['at rest: replicas’ CPU (all together)', ...cells((figures) => `${figures.idleCpuMsPerSecond.toFixed(1)} ms/s`)],
      ['at rest: RSS per replica', ...cells((figures) => figures.rssEach.map(formatBytes).join(', '))],
      ['PostgreSQL connections (all replicas)', ...cells((figures) => String(figures.databaseConnections))],
    ]),
  );
  print();
  for (const figures of runs) {
    const details = new Set([...figures.cold, ...figures.warm].flatMap((turn) => (turn.detail === null ? [] : [`${turn.outcome}: ${turn.detail}`])));
    for (const detail of [...details].slice(0, 3)) print(`  ${figures.replicas} replica(s), a turn that did not complete: ${detail}`);
    for (const problem of figures.problems.slice(0, 5)) print(`  ${figures.replicas} replica(s): ${problem}`);
    if (figures.logs) print(`  ${figures.replicas} replica(s): something went wrong; the replicas' logs are in ${figures.logs}`);
  }
  print(`  load average ${loads()}`);
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2), process.env);
  if (!process.env.TEST_DATABASE_URL) progress('TEST_DATABASE_URL is not set: each part starts a throwaway PostgreSQL cluster');
  print(`Replicas benchmark: parts ${options.parts.join(', ')}; lease ${options.leaseSeconds} s; load average at start ${loads()}`);
  const model = await startModelProcess();
  let failed = false;
  const cleanUp = async (): Promise<void> => {
    await Promise.all([...running].map((set) => stopCluster(set).catch(() => undefined)));
    await model.close();
  };
  const interrupted = (signal: NodeJS.Signals): void => {
    progress(`${signal}: stopping the replicas and removing their database and data directory`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  process.once('unhandledRejection', (error) => {
    progress(`unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    void cleanUp().finally(() => process.exit(1));
  });
  try {
    for (const part of options.parts) {
      partSets = [];
      try {
        if (part === 'delivery') await deliveryPart(options, model);
        else if (part === 'failover') await failoverPart(options, model);
        else await overheadPart(options, model);
      } catch (error) {
        failed = true;
        print();
        print(`Part ${part} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        for (const set of partSets) print(`  the replicas' logs are in ${saveLogs(set, part)}`);
      }
    }
  } finally {
    progress('cleaning up');
    await cleanUp();
  }
  process.exit(failed ? 1 : 0);
}

await main();
