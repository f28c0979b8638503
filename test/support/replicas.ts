import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Store } from '../../src/core/store.ts';
import { createPostgresStore } from '../../src/store/postgres/index.ts';
import { ApiClient, describeEvents, type StreamedEvent } from './api-client.ts';
import { removeDataDir } from './data-dir.ts';
import { sandboxProcesses } from './host-processes.ts';
import { startTestPostgres, type TestPostgres } from './postgres.ts';
import { killServer, startServerProcess, type ServerProcess } from './server-process.ts';

/** One `agentyard serve` process among several that share a database and a data directory. */
export interface Replica {
  /** Its AGENTYARD_REPLICA_ID, e.g. `r1`. */
  id: string;
  server: ServerProcess;
  url: string;
}

export interface ReplicaSet {
  replicas: Replica[];
  dataDir: string;
  databaseUrl: string;
  /** A store on the replicas' database, for what the API does not show (leases, their history, the event log). */
  store: Store;
  replica(id: string): Replica;
  /** Starts one more replica with the same settings under a new id (to keep the count after a kill), added to `replicas`. */
  add(id: string): Promise<Replica>;
  /** The replicas' last log lines, for failure messages. */
  describe(lines?: number): string;
  /** Ends every replica (SIGTERM, then SIGKILL if it does not exit), and removes the database and the data directory. */
  stop(): Promise<void>;
}

export interface ReplicaOptions {
  count: number;
  /** Settings every replica gets (the model's address, say), on top of the replica settings below. */
  env: Record<string, string>;
  /** AGENTYARD_LEASE_SECONDS: short, so that a takeover happens within a test. */
  leaseSeconds?: number;
  /** AGENTYARD_DRAIN_SECONDS. */
  drainSeconds?: number;
}

/**
 * Starts `count` replicas (r1, r2, …) on one fresh PostgreSQL database and one data directory. Replicas need
 * PostgreSQL whatever the test configuration's store: SQLite runs one replica. The sandbox backend is the local one,
 * whose agent processes are children of the replica that started them, so a test can tell whose they are.
 *
 * The first replica starts alone (it migrates the database), the others together.
 */
export async function startReplicas(options: ReplicaOptions): Promise<ReplicaSet> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-replicas-'));
  const database = await startTestPostgres();
  const replicas: Replica[] = [];
  const store = createPostgresStore({ url: database.url, poolSize: 2 });
  const envFor = (id: string): Record<string, string> => ({
    AGENTYARD_SANDBOX: 'local',
    AGENTYARD_REPLICA_ID: id,
    AGENTYARD_LEASE_SECONDS: String(options.leaseSeconds ?? 4),
    AGENTYARD_DRAIN_SECONDS: String(options.drainSeconds ?? 10),
    ...options.env,
    DATABASE_URL: database.url,
    AGENTYARD_DATA_DIR: dataDir,
  });
  const start = async (id: string): Promise<Replica> => {
    const server = await startServerProcess(envFor(id));
    return { id, server, url: server.url };
  };
  const set = replicaSet(replicas, dataDir, database, store, (options.drainSeconds ?? 10) * 1000, start);
  try {
    replicas.push(await start('r1'));
    const others = Array.from({ length: options.count - 1 }, (_, index) => `r${index + 2}`);
    const started = await Promise.allSettled(others.map(start));
    for (const result of started) if (result.status === 'fulfilled') replicas.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    replicas.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
    return set;
  } catch (error) {
    await set.stop();
    throw error;
  }
}

function replicaSet(
  replicas: Replica[],
  dataDir: string,
  database: TestPostgres,
  store: Store,
  drainMs: number,
  start: (id: string) => Promise<Replica>,
): ReplicaSet {
  return {
    replicas,
    dataDir,
    databaseUrl: database.url,
    store,
    replica(id) {
      const found = replicas.find((replica) => replica.id === id);
      if (!found) throw new Error(`no replica ${id} (there are ${replicas.map((replica) => replica.id).join(', ')})`);
      return found;
    },
    async add(id) {
      if (replicas.some((replica) => replica.id === id)) throw new Error(`replica ${id} exists already`);
      const replica = await start(id);
      replicas.push(replica);
      return replica;
    },
    describe(lines = 25) {
      return replicas.map((replica) => describeReplica(replica, lines)).join('\n');
    },
    async stop() {
      await Promise.all(replicas.map((replica) => stopReplica(replica, drainMs + 15_000)));
      await store.close().catch(() => undefined);
      await database.stop().catch(() => undefined);
      await removeDataDir(dataDir);
    },
  };
}

/** A replica's state and last log lines. */
export function describeReplica(replica: Replica, lines = 25): string {
  const { child } = replica.server;
  const state = isRunning(replica) ? `running, pid ${child.pid}` : `exited (${child.exitCode ?? child.signalCode})`;
  const tail = replica.server.log.slice(-lines).map((line) => `    ${line.slice(0, 400)}`);
  return [`  replica ${replica.id} at ${replica.url}, ${state}; last ${tail.length} log lines:`, ...tail].join('\n');
}

export function isRunning(replica: Replica): boolean {
  return replica.server.child.exitCode === null && replica.server.child.signalCode === null;
}

/** Resolves with how the replica's process ended (at once if it has already). */
export function exitOf(replica: Replica): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const { child } = replica.server;
  if (!isRunning(replica)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** A stopped (SIGSTOP) replica would never see SIGTERM: it is continued first; one that outlasts `graceMs` is killed. */
async function stopReplica(replica: Replica, graceMs: number): Promise<void> {
  if (!isRunning(replica)) return;
  replica.server.child.kill('SIGCONT');
  const timer = setTimeout(() => void killServer(replica.server, 'SIGKILL'), graceMs);
  await killServer(replica.server, 'SIGTERM');
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------------
// Who ran which turn

/** One turn as a replica logged it: `turn started` and, unless the replica died first, `turn ended`. */
export interface TurnRun {
  conversationId: string;
  turnId: string;
  /** The replica whose process logged it. */
  replicaId: string;
  /** The `replicaId` field of the log lines (should be the same). */
  loggedReplicaId: unknown;
  /** Log times (epoch ms); all replicas run on this host, so they compare. */
  startedAt: number;
  endedAt: number | null;
}

/** Every turn the replicas logged as started, in order of start. */
export function turnRuns(replicas: Replica[]): TurnRun[] {
  const runs: TurnRun[] = [];
  for (const replica of replicas) {
    const open = new Map<string, TurnRun>();
    for (const line of replica.server.log) {
      const entry = parseLogLine(line);
      if (!entry || typeof entry.turnId !== 'string' || typeof entry.conversationId !== 'string') continue;
      if (entry.msg === 'turn started') {
        const run: TurnRun = {
          conversationId: entry.conversationId,
          turnId: entry.turnId,
          replicaId: replica.id,
          loggedReplicaId: entry.replicaId,
          startedAt: Number(entry.time),
          endedAt: null,
        };
        runs.push(run);
        open.set(entry.turnId, run);
      } else if (entry.msg === 'turn ended') {
        const run = open.get(entry.turnId);
        if (run) run.endedAt = Number(entry.time);
        open.delete(entry.turnId);
      }
    }
  }
  return runs.sort((a, b) => a.startedAt - b.startedAt);
}

/** Pairs of runs of one conversation on different replicas whose times overlap (a run without an end never ends). */
export function overlappingRuns(runs: TurnRun[]): Array<[TurnRun, TurnRun]> {
  const overlaps: Array<[TurnRun, TurnRun]> = [];
  for (const [index, first] of runs.entries()) {
    for (const second of runs.slice(index + 1)) {
      if (first.conversationId !== second.conversationId || first.replicaId === second.replicaId) continue;
      const firstEnd = first.endedAt ?? Infinity;
      const secondEnd = second.endedAt ?? Infinity;
      if (first.startedAt < secondEnd && second.startedAt < firstEnd) overlaps.push([first, second]);
    }
  }
  return overlaps;
}

interface LogEntry {
  msg?: unknown;
  time?: unknown;
  conversationId?: unknown;
  turnId?: unknown;
  replicaId?: unknown;
}

function parseLogLine(line: string): LogEntry | null {
  if (!line.startsWith('{')) return null;
  try {
    return JSON.parse(line) as LogEntry;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// Agent processes

/** Host pids of the Claude CLIs in the data directory's sandboxes that this replica's process started. */
export function agentPidsOf(replica: Replica, dataDir: string): number[] {
  const root = replica.server.child.pid;
  if (root === undefined || !isRunning(replica)) return [];
  return sandboxProcesses(dataDir, 'claude').filter((pid) => descendsFrom(pid, root));
}

/** Whether the process exists and is not a zombie (this container's init may not reap what it inherits). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function descendsFrom(pid: number, ancestor: number): boolean {
  let current = pid;
  for (let depth = 0; depth < 64 && current > 1; depth += 1) {
    if (current === ancestor) return true;
    current = parentOf(current);
  }
  return false;
}

function parentOf(pid: number): number {
  const status = existsSync(`/proc/${pid}/status`) ? readFileSync(`/proc/${pid}/status`, 'utf8') : '';
  return Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
}

// ---------------------------------------------------------------------------------------------------
// Following a conversation across replicas

/** How one connection of a follower ended. */
export interface StreamEnd {
  replicaId: string;
  /**
   * `hint`: the server ended the stream with a last `event: error` without id (its `code`, e.g. REPLICA_DRAINING);
   * `closed`: the server ended it without one; `failed`: the connection failed or was refused.
   */
  kind: 'hint' | 'closed' | 'failed';
  code: string | null;
  detail: string;
}

/** A client reading one conversation's events from a replica, moving to the next replica when its stream ends. */
export interface ConversationFollower {
  /** The persisted events seen so far (with ids), over every connection, in the order they arrived. */
  readonly events: StreamedEvent[];
  readonly ends: StreamEnd[];
  /** The replica of each connection that answered 200, in order. */
  readonly connections: string[];
  /** Resolves once the first stream is open. */
  readonly connected: Promise<void>;
  /** Resolves with `events` once `until` holds; rejects after `timeoutMs`, saying what was seen. */
  readonly done: Promise<StreamedEvent[]>;
  /** Gives up (the pending read ends when its replica stops). */
  stop(): void;
  describe(): string;
}

export interface FollowOptions {
  conversationId: string;
  auth: ApiClient['auth'];
  /** The first is where the client attaches; when a stream ends, it reconnects to the next running one, round. */
  replicas: Replica[];
  until: (events: StreamedEvent[]) => boolean;
  timeoutMs?: number;
}

/**
 * Follows a conversation's SSE stream as a resilient client would: when the stream ends (a retry hint, the server
 * closing it, the replica dying), it reconnects to another replica with Last-Event-ID set to the last id it saw.
 */
export function followConversation(options: FollowOptions): ConversationFollower {
  const events: StreamedEvent[] = [];
  const ends: StreamEnd[] = [];
  const connections: string[] = [];
  let stopped = false;
  let markConnected: () => void = () => undefined;
  const connected = new Promise<void>((resolve) => {
    markConnected = resolve;
  });
  const describe = (): string =>
    [
      `follower of ${options.conversationId}: ${events.length} events over connections to ${connections.join(', ') || 'none'}`,
      describeEvents(events),
      ...ends.map((end) => `  stream on ${end.replicaId} ended: ${end.kind}${end.code ? ` ${end.code}` : ''} ${end.detail.split('\n')[0]}`),
    ].join('\n');

  const run = async (): Promise<StreamedEvent[]> => {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    let index = 0;
    let refusedInARow = 0;
    while (!options.until(events)) {
      if (stopped) throw new Error(`stopped\n${describe()}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`the awaited events did not arrive within ${options.timeoutMs ?? 60_000} ms\n${describe()}`);
      const replica = options.replicas[index % options.replicas.length]!;
      if (!isRunning(replica)) {
        index += 1;
        refusedInARow += 1;
        if (refusedInARow >= options.replicas.length) await delay(200);
        continue;
      }
      const end = await readOnce(replica, remaining);
      if (end === null) continue; // `until` holds (or the follower was stopped)
      ends.push(end);
      index += 1;
      refusedInARow = end.kind === 'failed' ? refusedInARow + 1 : 0;
      if (refusedInARow >= options.replicas.length) await delay(200);
    }
    return events;
  };

  /** One connection: null when `until` came to hold, else how the stream ended. */
  const readOnce = async (replica: Replica, timeoutMs: number): Promise<StreamEnd | null> => {
    let current: StreamedEvent[] = [];
    let taken = 0;
    const take = (): void => {
      for (; taken < current.length; taken += 1) {
        const event = current[taken]!;
        if (event.id !== null) events.push(event);
      }
    };
    const last = events.at(-1);
    try {
      await new ApiClient(replica.url, options.auth).readEvents(options.conversationId, {
        ...(last && last.id !== null ? { after: last.id } : {}),
        timeoutMs,
        until: (seen) => {
          if (current !== seen) {
            current = seen;
            connections.push(replica.id);
            markConnected();
          }
          take();
          // A last error without id closes the stream: stop there rather than wait for the end of the response.
          return seen.at(-1)?.id === null || options.until(events) || stopped;
        },
      });
      take();
      const closing = current.at(-1);
      if (closing && closing.id === null) {
        const data = closing.data as { code?: unknown; message?: unknown };
        return { replicaId: replica.id, kind: 'hint', code: typeof data.code === 'string' ? data.code : null, detail: String(data.message ?? '') };
      }
      return null;
    } catch (error) {
      take();
      const message = error instanceof Error ? error.message : String(error);
      const kind = message.startsWith('event stream ended early') ? 'closed' : 'failed';
      return { replicaId: replica.id, kind, code: null, detail: message };
    }
  };

  const done = run();
  // A test that failed earlier may never await these: their rejection must not count as unhandled.
  done.catch(() => undefined);
  return {
    events,
    ends,
    connections,
    connected,
    done,
    stop: () => {
      stopped = true;
    },
    describe,
  };
}

// ---------------------------------------------------------------------------------------------------
// Reading events

/** `until` helper: stop once `count` turn.ended events have arrived. */
export const untilTurnsEnded =
  (count: number) =>
  (events: StreamedEvent[]): boolean =>
    events.filter((event) => event.event === 'turn.ended').length >= count;

/** What is wrong with a conversation's event ids: each must be the previous one plus one, from 1. Empty when right. */
export function sequenceProblems(events: StreamedEvent[]): string[] {
  const problems: string[] = [];
  let expected = 1;
  for (const event of events) {
    if (event.id !== expected) problems.push(`event ${event.event} has id ${event.id}, expected ${expected}`);
    expected = (event.id ?? expected) + 1;
  }
  return problems;
}

/** Polls `probe` until it answers something other than null, undefined or false; fails with `context()` after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number; context?: () => string } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value !== null && value !== undefined && value !== false) return value;
      lastError = null;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `\nlast error: ${lastError.message}` : '';
      throw new Error(`${what}: not within ${timeoutMs} ms${cause}\n${options.context?.() ?? ''}`);
    }
    await delay(options.intervalMs ?? 100);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
