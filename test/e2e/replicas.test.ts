import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationEvent } from '../../src/core/events.ts';
import { ApiClient, describeEvents, untilTurnEnded, type StreamedEvent } from '../support/api-client.ts';
import { platformSecret } from '../support/platform.ts';
import {
  agentPidsOf,
  delay,
  eventually,
  exitOf,
  followConversation,
  isRunning,
  overlappingRuns,
  processAlive,
  sequenceProblems,
  startReplicas,
  turnRuns,
  untilTurnsEnded,
  type ConversationFollower,
  type FollowOptions,
  type Replica,
  type ReplicaOptions,
  type ReplicaSet,
  type TurnRun,
} from '../support/replicas.ts';
import { startScriptedModel, text, type Script, type ScriptedModel } from '../support/scripted-model.ts';
import { killServer } from '../support/server-process.ts';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The lease time of these tests: a dead replica's conversations are taken over a few seconds later. */
const leaseSeconds = 4;

/**
 * `LONG<n>` streams n chunks 200 ms apart (a turn that is still running when the test acts); "what was the word"
 * answers whether the Claude session the CLI resumed holds PINEAPPLE; anything else gets the default script.
 */
const script: Script = (request, context) => {
  const long = /LONG(\d+)/.exec(request.lastUserText);
  if (long) return text(Array.from({ length: Number(long[1]) }, (_, position) => `chunk${position} `), { delayMs: 200 });
  if (request.lastUserText.includes('what was the word')) {
    return text(`the word was ${/PINEAPPLE/.test(JSON.stringify(request.body.messages)) ? 'PINEAPPLE' : 'unknown'}`);
  }
  return context.defaultScript(request, context);
};

const replyTo = (prompt: string): string => `Hello from the scripted model. You said: ${prompt}`;

describe('replicas on one PostgreSQL database and data directory (local sandboxes)', () => {
  let model: ScriptedModel;
  let cluster: ReplicaSet | null = null;
  let followers: ConversationFollower[] = [];

  beforeAll(async () => {
    model = await startScriptedModel({ script });
  });
  afterEach(async () => {
    for (const follower of followers) follower.stop();
    followers = [];
    await cluster?.stop();
    cluster = null;
  });
  afterAll(async () => {
    await model?.close();
  });

  async function start(options: Partial<ReplicaOptions> = {}): Promise<ReplicaSet> {
    cluster = await startReplicas({
      count: 3,
      leaseSeconds,
      ...options,
      env: {
        ANTHROPIC_BASE_URL: model.url,
        ANTHROPIC_API_KEY: platformSecret,
        AGENTYARD_MODEL_MAX_RETRIES: '0',
        // A paused sandbox would make what these tests see of agent processes depend on this machine's speed.
        AGENTYARD_PAUSE_AFTER_SECONDS: '0',
        ...options.env,
      },
    });
    return cluster;
  }

  function follow(options: FollowOptions): ConversationFollower {
    const follower = followConversation(options);
    followers.push(follower);
    return follower;
  }

  /** Creates a conversation through `client` and returns its id. */
  async function createConversation(client: ApiClient): Promise<string> {
    const created = await client.request('POST', '/api/conversations', {});
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body.id as string;
  }

  /** Sends a message through `client` and returns its turn id. */
  async function send(client: ApiClient, conversationId: string, message: string): Promise<string> {
    const sent = await client.request('POST', `/api/conversations/${conversationId}/messages`, { text: message });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    return sent.body.turnId as string;
  }

  /** The replica that logged `turn started` for the turn, once one has. */
  async function runnerOf(set: ReplicaSet, turnId: string, timeoutMs = 60_000): Promise<Replica> {
    const run = await eventually(`a replica logs "turn started" for ${turnId}`, () => turnRuns(set.replicas).find((candidate) => candidate.turnId === turnId), {
      timeoutMs,
      context: () => set.describe(),
    });
    return set.replica(run.replicaId);
  }

  /** Waits until the follower has seen `count` message.delta events. */
  async function deltasSeen(set: ReplicaSet, follower: ConversationFollower, count: number): Promise<void> {
    await eventually(`${count} message.delta events arrive`, () => follower.events.filter((event) => event.event === 'message.delta').length >= count, {
      context: () => `${follower.describe()}\n${set.describe()}`,
    });
  }

  it('runs 20 conversations across three replicas: every client sees every event once and in order, and no conversation runs on two replicas at once', async () => {
    const set = await start();
    const pick = (): Replica => set.replicas[Math.floor(Math.random() * set.replicas.length)]!;
    // The first account is the administrator; the others are registered on random replicas and used on any.
    await new ApiClient(set.replicas[0]!.url).registerWithToken('root@example.com');
    const users: ApiClient[] = [];
    for (let index = 0; index < 5; index += 1) users.push(await new ApiClient(pick().url).registerWithToken(`user${index}@example.com`));

    interface Work {
      id: string;
      user: ApiClient;
      prompts: string[];
      turnIds: string[];
      followers: ConversationFollower[];
    }
    const work: Work[] = [];
    for (let index = 0; index < 20; index += 1) {
      const user = users[index % users.length]!;
      const id = await createConversation(new ApiClient(pick().url, user.auth));
      work.push({ id, user, prompts: [`conversation ${index} first`, `conversation ${index} second`], turnIds: [], followers: [] });
    }

    // Four conversations at a time (a CLI costs about a second of CPU to start on this 2-core machine); in each, a
    // client on every replica, and two messages to random replicas, the second queued behind the first.
    const runConversation = async (item: Work): Promise<void> => {
      item.followers = set.replicas.map((replica) =>
        follow({ conversationId: item.id, auth: item.user.auth, replicas: [replica], until: untilTurnsEnded(2), timeoutMs: 90_000 }),
      );
      await Promise.all(item.followers.map((follower) => follower.connected));
      for (const prompt of item.prompts) item.turnIds.push(await send(new ApiClient(pick().url, item.user.auth), item.id, prompt));
      await Promise.all(item.followers.map((follower) => follower.done));
    };
    const pending = [...work];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let item = pending.shift(); item; item = pending.shift()) await runConversation(item);
      }),
    );

    // A replica logs a turn's end just after persisting its turn.ended event: the last ones may still be on their way.
    const turnIds = work.flatMap((item) => item.turnIds);
    const runs = await eventually(
      'every turn is logged as ended',
      () => {
        const logged = turnRuns(set.replicas);
        return turnIds.every((turnId) => logged.some((run) => run.turnId === turnId && run.endedAt !== null)) ? logged : null;
      },
      { timeoutMs: 30_000, context: () => set.describe() },
    );
    const context = (item: Work): string =>
      [
        `conversation ${item.id}, turns ${item.turnIds.join(', ')}`,
        ...item.followers.map((follower) => follower.describe()),
        `runs: ${JSON.stringify(runs.filter((run) => run.conversationId === item.id))}`,
        set.describe(10),
      ].join('\n');

    for (const item of work) {
      const [reference, ...others] = item.followers.map((follower) => follower.events);
      for (const follower of item.followers) {
        // Each client: ids 1, 2, 3, … without a gap or a repeat, up to the second turn's end; no stream was cut.
        expect(sequenceProblems(follower.events), context(item)).toEqual([]);
        expect(follower.events.at(-1)?.event, context(item)).toBe('turn.ended');
        expect(follower.ends, context(item)).toEqual([]);
      }
      // The same events, whichever replica a client is attached to and whichever ran the turn.
      for (const events of others) expect(events, context(item)).toEqual(reference);
      const events = reference!;
      expect(
        events.filter((event) => event.event === 'turn.ended').map((event) => [event.data.turnId, event.data.status]),
        context(item),
      ).toEqual(item.turnIds.map((turnId) => [turnId, 'completed']));
      for (const [position, turnId] of item.turnIds.entries()) {
        const ofTurn = events.filter((event) => event.data.turnId === turnId);
        expect(ofTurn.filter((event) => event.event === 'turn.started'), context(item)).toHaveLength(1);
        expect(ofTurn.find((event) => event.event === 'message.completed')?.data.text, context(item)).toBe(replyTo(item.prompts[position]!));
        // Exactly one replica ran the turn, and logged its end; clients on the two others saw all of it.
        const ran = runs.filter((run) => run.turnId === turnId);
        expect(ran.map((run) => [run.replicaId, run.loggedReplicaId, run.endedAt !== null]), context(item)).toEqual([[ran[0]?.replicaId, ran[0]?.replicaId, true]]);
        expect(ran[0]?.conversationId, context(item)).toBe(item.id);
      }
    }

    expect(overlappingRuns(runs), 'turns of one conversation ran on two replicas at the same time').toEqual([]);
    for (const item of work) {
      expect(await leaseProblems(set, item.id, runs), context(item)).toEqual([]);
    }
  }, 400_000);

  it('hands a killed replica’s conversation to another within the lease time: the running turn ends REPLICA_LOST and the queued one resumes the Claude session', async () => {
    const set = await start();
    const alice = await new ApiClient(set.replicas[0]!.url).registerWithToken('alice@example.com');
    const bob = await new ApiClient(set.replicas[1]!.url).registerWithToken('bob@example.com');
    const via = (user: ApiClient, replica: Replica): ApiClient => new ApiClient(replica.url, user.auth);

    // Bob's conversations, one sent to each replica, so that some sandbox lives on a replica that survives.
    const bystanders: Array<{ id: string; runner: Replica }> = [];
    for (const replica of set.replicas) {
      const id = await createConversation(via(bob, replica));
      const turnId = await send(via(bob, replica), id, 'hello from a bystander');
      await via(bob, replica).readEvents(id, { until: untilTurnEnded(turnId), timeoutMs: 90_000 });
      bystanders.push({ id, runner: await runnerOf(set, turnId) });
    }

    const conversationId = await createConversation(via(alice, set.replicas[0]!));
    const first = await send(via(alice, set.replicas[0]!), conversationId, 'LONG150 remember the word PINEAPPLE');
    const victim = await runnerOf(set, first);
    const survivors = set.replicas.filter((replica) => replica !== victim);
    const bystander = bystanders.find((candidate) => candidate.runner !== victim);
    expect(bystander, `every bystander conversation ran on ${victim.id}, the replica about to be killed:\n${set.describe()}`).toBeDefined();
    const watchers = survivors.map((replica) =>
      follow({ conversationId, auth: alice.auth, replicas: [replica], until: untilTurnsEnded(2), timeoutMs: 90_000 }),
    );
    await Promise.all(watchers.map((watcher) => watcher.connected));
    await deltasSeen(set, watchers[0]!, 3);

    const sessionBefore = model.requests.find((request) => request.path.startsWith('/v1/messages') && JSON.stringify(request.body).includes('remember the word PINEAPPLE'))
      ?.headers['x-claude-code-session-id'];
    expect(sessionBefore).toBeTruthy();
    const queued = await send(via(alice, survivors[0]!), conversationId, 'what was the word?');
    const victimAgents = agentPidsOf(victim, set.dataDir);
    const bystanderAgents = agentPidsOf(bystander!.runner, set.dataDir);
    expect(victimAgents.length, set.describe()).toBeGreaterThan(0);
    expect(bystanderAgents.length, set.describe()).toBeGreaterThan(0);
    const requestsBefore = model.requests.length;

    await killServer(victim.server, 'SIGKILL');
    // The local sandbox and its agent die with the replica that started them.
    await eventually('the killed replica’s agent processes are gone', () => victimAgents.every((pid) => !processAlive(pid)), { timeoutMs: 10_000 });
    await Promise.all(watchers.map((watcher) => watcher.done));

    const context = (): string => [...watchers.map((watcher) => watcher.describe()), set.describe()].join('\n');
    const events = watchers[0]!.events;
    for (const watcher of watchers) {
      expect(sequenceProblems(watcher.events), context()).toEqual([]);
      expect(watcher.ends, context()).toEqual([]);
      expect(watcher.events, context()).toEqual(events);
    }
    const ends = events.filter((event) => event.event === 'turn.ended');
    expect(ends.map((event) => [event.data.turnId, event.data.status]), context()).toEqual([
      [first, 'interrupted'],
      [queued, 'completed'],
    ]);
    expect(ends[0]!.data.error?.code, context()).toBe('REPLICA_LOST');
    // Nothing of the lost turn after its end.
    const firstEnd = events.indexOf(ends[0]!);
    expect(events.slice(firstEnd + 1).filter((event) => event.data.turnId === first), context()).toEqual([]);
    const reply = events.find((event) => event.event === 'message.completed' && event.data.turnId === queued);
    expect(reply?.data.text, context()).toBe('the word was PINEAPPLE');
    const detail = await via(alice, survivors[1]!).request('GET', `/api/conversations/${conversationId}`);
    expect(detail.body.turns.map((turn: { status: string }) => turn.status)).toEqual(['interrupted', 'completed']);

    // A surviving replica ran the queued turn, after taking the lease from the dead one with the next token.
    const successor = await runnerOf(set, queued);
    expect(successor).not.toBe(victim);
    const history = await set.store.listLeaseHistory(conversationId);
    const takeover = history.findIndex((change) => change.previousReplicaId === victim.id);
    expect(takeover, JSON.stringify(history)).toBeGreaterThan(0);
    expect(history[takeover]!.replicaId, JSON.stringify(history)).not.toBe(victim.id);
    expect(history[takeover]!.token, JSON.stringify(history)).toBe(history[takeover - 1]!.token + 1);
    expect(await leaseProblems(set, conversationId, turnRuns(set.replicas)), JSON.stringify(history)).toEqual([]);

    // The resumed CLI sent the earlier messages under the same Claude session id.
    const resumed = model.requests
      .slice(requestsBefore)
      .filter((request) => request.path.startsWith('/v1/messages') && JSON.stringify(request.body).includes('what was the word'));
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed[0]!.headers['x-claude-code-session-id']).toBe(sessionBefore);
    expect(JSON.stringify(resumed[0]!.body)).toContain('remember the word PINEAPPLE');

    // The other conversation's sandbox on a surviving replica was left alone, and answers.
    expect(bystanderAgents.filter((pid) => !processAlive(pid)), set.describe()).toEqual([]);
    const client = via(bob, bystander!.runner);
    const next = await send(client, bystander!.id, 'still there?');
    const answered = await client.readEvents(bystander!.id, { until: untilTurnEnded(next), timeoutMs: 60_000 });
    expect(answered.find((event) => event.event === 'turn.ended' && event.data.turnId === next)?.data.status, describeEvents(answered)).toBe('completed');
    expect(answered.find((event) => event.event === 'message.completed' && event.data.turnId === next)?.data.text).toBe(replyTo('still there?'));
  }, 300_000);

  it('fences a replica stopped past its lease: once another has taken the conversation, the stale one writes nothing and releases its sandbox', async () => {
    const set = await start();
    const alice = await new ApiClient(set.replicas[0]!.url).registerWithToken('alice@example.com');
    const via = (replica: Replica): ApiClient => new ApiClient(replica.url, alice.auth);
    const conversationId = await createConversation(via(set.replicas[0]!));
    // 30 s of answer: the stale replica's CLI is still writing it when the replica is continued.
    const first = await send(via(set.replicas[0]!), conversationId, 'LONG150 an answer that outlives the lease');
    const stale = await runnerOf(set, first);
    const others = set.replicas.filter((replica) => replica !== stale);
    const watchers = others.map((replica) => follow({ conversationId, auth: alice.auth, replicas: [replica], until: untilTurnsEnded(2), timeoutMs: 90_000 }));
    await Promise.all(watchers.map((watcher) => watcher.connected));
    await deltasSeen(set, watchers[0]!, 3);
    const second = await send(via(others[0]!), conversationId, 'after the takeover');
    const staleAgents = agentPidsOf(stale, set.dataDir);
    expect(staleAgents.length, set.describe()).toBeGreaterThan(0);
    const leaseBefore = await set.store.getLease(conversationId);
    expect(leaseBefore?.replicaId).toBe(stale.id);

    stale.server.child.kill('SIGSTOP');
    let successor: string;
    try {
      const taken = await eventually(
        'another replica holds the lease',
        async () => {
          const lease = await set.store.getLease(conversationId);
          return lease && lease.replicaId !== stale.id ? lease : null;
        },
        { timeoutMs: 60_000, intervalMs: 200, context: () => `${watchers[0]!.describe()}\n${set.describe()}` },
      );
      successor = taken.replicaId;
      expect(taken.token).toBeGreaterThan(leaseBefore!.token);
    } finally {
      stale.server.child.kill('SIGCONT');
    }
    const context = (): string => [...watchers.map((watcher) => watcher.describe()), set.describe()].join('\n');
    await Promise.all(watchers.map((watcher) => watcher.done));
    await eventually('the stale replica’s agent process is gone', () => staleAgents.every((pid) => !processAlive(pid)), { timeoutMs: 20_000, context });
    // One more turn: time for the continued replica to write anything it still would, seen by a client and in the store.
    const third = await send(via(others[1]!), conversationId, 'and one more');
    await via(others[1]!).readEvents(conversationId, { until: untilTurnEnded(third), timeoutMs: 60_000 });

    const stored = await set.store.listEvents(conversationId);
    const storedContext = (): string => `${describeStored(stored)}\n${context()}`;
    expect(sequenceProblems(stored.map(asStreamed)), storedContext()).toEqual([]);
    const ends = stored.filter((event) => event.data.type === 'turn.ended');
    expect(ends.map((event) => [turnOf(event), event.data.type === 'turn.ended' ? event.data.status : null]), storedContext()).toEqual([
      [first, 'interrupted'],
      [second, 'completed'],
      [third, 'completed'],
    ]);
    const firstEnd = ends[0]!;
    expect(firstEnd.data.type === 'turn.ended' ? firstEnd.data.error?.code : null, storedContext()).toBe('REPLICA_LOST');
    // After the takeover's end of the stale turn, only later turns: no delta of the old turn came through.
    expect(stored.filter((event) => event.seq > firstEnd.seq && turnOf(event) === first).map((event) => event.data.type), storedContext()).toEqual([]);
    expect(turnRuns(set.replicas).filter((run) => run.turnId === second).map((run) => run.replicaId === stale.id), storedContext()).toEqual([false]);
    // The clients saw what the store holds, up to the second turn's end.
    for (const watcher of watchers) expect(watcher.events.map((event) => event.id), context()).toEqual(stored.slice(0, watcher.events.length).map((event) => event.seq));
    const history = await set.store.listLeaseHistory(conversationId);
    const takeover = history.findIndex((change) => change.previousReplicaId === stale.id && change.replicaId === successor!);
    expect(takeover, JSON.stringify(history)).toBeGreaterThan(0);
    expect(history[takeover]!.token, JSON.stringify(history)).toBe(history[takeover - 1]!.token + 1);
  }, 300_000);

  it('drains on SIGTERM: not ready, the running turn ends, clients reconnect elsewhere with Last-Event-ID, and the process exits 0', async () => {
    const drainSeconds = 30;
    const set = await start({ drainSeconds });
    const alice = await new ApiClient(set.replicas[0]!.url).registerWithToken('alice@example.com');
    const via = (replica: Replica): ApiClient => new ApiClient(replica.url, alice.auth);
    const conversationId = await createConversation(via(set.replicas[0]!));
    // About 8 s of answer: shorter than the drain time.
    const first = await send(via(set.replicas[0]!), conversationId, 'LONG40 a turn that finishes while its replica drains');
    const draining = await runnerOf(set, first);
    const others = set.replicas.filter((replica) => replica !== draining);
    const watcher = follow({ conversationId, auth: alice.auth, replicas: [draining, ...others], until: untilTurnsEnded(2), timeoutMs: 90_000 });
    await watcher.connected;
    await deltasSeen(set, watcher, 2);

    const exited = exitOf(draining);
    draining.server.child.kill('SIGTERM');
    const readiness = await readinessWhileDraining(draining);
    const second = await send(via(others[0]!), conversationId, 'after the drain');
    await watcher.done;
    const exit = await Promise.race([exited, delay((drainSeconds + 30) * 1000).then(() => null)]);

    const context = (): string => `${watcher.describe()}\nreadiness after SIGTERM: ${readiness.join(' ')}\n${set.describe()}`;
    expect(readiness, context()).toContain(503);
    expect(exit, context()).toEqual({ code: 0, signal: null });
    const events = watcher.events;
    // Every event exactly once, in order, across the two connections.
    expect(sequenceProblems(events), context()).toEqual([]);
    expect(watcher.connections[0], context()).toBe(draining.id);
    expect(watcher.connections.slice(1).filter((id) => id === draining.id), context()).toEqual([]);
    // The one error the client saw is the hint to go elsewhere.
    expect(watcher.ends.map((end) => [end.replicaId, end.kind, end.code]), context()).toEqual([[draining.id, 'hint', 'REPLICA_DRAINING']]);
    const ends = events.filter((event) => event.event === 'turn.ended');
    expect(ends.map((event) => event.data.turnId), context()).toEqual([first, second]);
    expect(['completed', 'interrupted'], context()).toContain(ends[0]!.data.status);
    expect(ends[1]!.data.status, context()).toBe('completed');
    const errors = events.filter((event) => event.event === 'error');
    // A turn handed over rather than finished says why in its own error event; nothing else is an error.
    expect(errors.filter((event) => ends[0]!.data.status === 'completed' || event.data.turnId !== first), context()).toEqual([]);
    // A draining replica takes no new turn.
    const secondRunner = await runnerOf(set, second);
    expect(secondRunner, context()).not.toBe(draining);
  }, 300_000);

  it('lists the live replicas to administrators, with their version and leases, and drops a killed one', async () => {
    const set = await start();
    const [r1, r2, r3] = set.replicas as [Replica, Replica, Replica];
    const root = await new ApiClient(r1.url).registerWithToken('root@example.com');
    const bob = await new ApiClient(r2.url).registerWithToken('bob@example.com');

    // One store of accounts: a token works on every replica, whichever the account was made on.
    for (const replica of set.replicas) {
      for (const [user, email] of [[root, 'root@example.com'], [bob, 'bob@example.com']] as const) {
        const me = await new ApiClient(replica.url, user.auth).request('GET', '/api/auth/me');
        expect([replica.id, me.status, me.body?.user?.email]).toEqual([replica.id, 200, email]);
      }
    }

    const list = async (via: Replica, user: ApiClient = root) => new ApiClient(via.url, user.auth).request('GET', '/api/admin/replicas');
    const listed = await list(r3);
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    const byId = (body: { replicas: Array<{ id: string }> }) => [...body.replicas].sort((a, b) => a.id.localeCompare(b.id));
    expect(byId(listed.body)).toEqual(
      set.replicas.map((replica) =>
        expect.objectContaining({
          id: replica.id,
          version,
          hostname: expect.any(String),
          pid: replica.server.child.pid,
          startedAt: expect.any(String),
          heartbeatAt: expect.any(String),
          draining: false,
          live: true,
          leases: 0,
        }),
      ),
    );
    for (const replica of listed.body.replicas as Array<{ url: unknown }>) expect(replica).toHaveProperty('url');
    for (const replica of set.replicas) {
      const refused = await list(replica, bob);
      expect([replica.id, refused.status, refused.body?.error?.code]).toEqual([replica.id, 403, 'FORBIDDEN']);
    }

    // A replica running a conversation's turn holds its lease.
    const conversationId = await createConversation(new ApiClient(r2.url, bob.auth));
    const turnId = await send(new ApiClient(r2.url, bob.auth), conversationId, 'LONG40 a turn that holds a lease');
    const runner = await runnerOf(set, turnId);
    const leases = await eventually(
      `${runner.id} reports the lease it holds`,
      async () => {
        const answer = await list(r1);
        const rows = answer.body.replicas as Array<{ id: string; leases: number }>;
        return rows.find((row) => row.id === runner.id)?.leases === 1 ? rows : null;
      },
      { timeoutMs: 30_000, context: () => set.describe() },
    );
    expect(leases.map((row) => [row.id, row.leases]).sort()).toEqual(set.replicas.map((replica) => [replica.id, replica === runner ? 1 : 0]));

    // A killed replica is no longer live once its heartbeat is older than the lease time (or is gone from the list).
    const victim = runner === r1 ? r3 : runner;
    await killServer(victim.server, 'SIGKILL');
    const after = await eventually(
      `${victim.id} drops out of the list`,
      async () => {
        const answer = await list(r1);
        const rows = answer.body.replicas as Array<{ id: string; live: boolean }>;
        return rows.some((row) => row.id === victim.id && row.live) ? null : rows;
      },
      { timeoutMs: leaseSeconds * 1000 + 60_000, intervalMs: 500, context: () => set.describe() },
    );
    for (const replica of set.replicas.filter((candidate) => candidate !== victim && isRunning(candidate))) {
      expect(after.find((row) => row.id === replica.id)?.live, JSON.stringify(after)).toBe(true);
    }
  }, 300_000);
});

/**
 * What is wrong with a conversation's lease history: each change of holder has the previous token plus one, and every
 * run of one of its turns (from the logs) happened while its replica held the lease. Empty when right.
 */
async function leaseProblems(set: ReplicaSet, conversationId: string, runs: TurnRun[]): Promise<string[]> {
  const history = await set.store.listLeaseHistory(conversationId);
  const problems: string[] = [];
  if (history.length === 0) problems.push('no lease history');
  for (const [index, change] of history.entries()) {
    const previous = history[index - 1];
    if (previous && change.token !== previous.token + 1) problems.push(`token ${change.token} (to ${change.replicaId}) follows token ${previous.token}`);
  }
  for (const run of runs.filter((candidate) => candidate.conversationId === conversationId)) {
    const holder = history.filter((change) => Date.parse(change.claimedAt) <= run.startedAt).at(-1);
    if (holder?.replicaId !== run.replicaId) {
      problems.push(`turn ${run.turnId} started on ${run.replicaId} at ${new Date(run.startedAt).toISOString()} while the lease was ${holder ? `${holder.replicaId}'s` : 'never claimed'}`);
    }
  }
  if (problems.length > 0) problems.push(`history: ${JSON.stringify(history)}`);
  return problems;
}

/** GET /readyz on a replica just sent SIGTERM, quickly and repeatedly, until it answers 503 or stops answering. */
async function readinessWhileDraining(replica: Replica): Promise<Array<number | string>> {
  const seen: Array<number | string> = [];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && isRunning(replica)) {
    const status = await fetch(`${replica.url}/readyz`, { signal: AbortSignal.timeout(5000) }).then(
      async (response) => {
        await response.arrayBuffer();
        return response.status;
      },
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    if (seen.at(-1) !== status) seen.push(status);
    if (status === 503) break;
    await delay(25);
  }
  return seen;
}

function turnOf(event: ConversationEvent): string | null {
  return 'turnId' in event.data ? event.data.turnId : null;
}

function asStreamed(event: ConversationEvent): StreamedEvent {
  return { id: event.seq, event: event.data.type, data: event.data };
}

function describeStored(events: ConversationEvent[]): string {
  return `stored events:\n${describeEvents(events.map(asStreamed))}`;
}
