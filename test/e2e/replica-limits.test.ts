import { readlinkSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, untilTurnEnded, type StreamedEvent } from '../support/api-client.ts';
import { sandboxProcesses } from '../support/host-processes.ts';
import { platformSecret } from '../support/platform.ts';
import { startReplicas, turnRuns, type ReplicaSet } from '../support/replicas.ts';
import { startScriptedModel, text, toolUse, type Script, type ScriptedModel } from '../support/scripted-model.ts';

/**
 * Quotas and rate limits hold across replicas (docs/decisions/0014-shared-limits.md): three server processes on one
 * PostgreSQL database and one data directory, each running turns at the same time.
 */

/** Every model request of the cost test is billed 100 000 input tokens; at $1 per million, $0.10 each. */
const tokensPerRequest = 100_000;
const costPerRequest = 0.1;
const prices = JSON.stringify({ '*': { input: 1, output: 0, cacheWrite: 0, cacheRead: 0 } });
/** How long each model request takes. */
const answerDelayMs = 800;

/**
 * `COSTLOOP`: the agent runs a short command and asks the model again, forever (until a quota refuses a request).
 * `HOLD`: a text answer streamed over about two seconds (after the model's delay), so that turns overlap.
 */
const script: Script = (request, context) => {
  const usage = { input_tokens: tokensPerRequest, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  if (request.lastUserText.includes('COSTLOOP')) {
    if (request.toolNames.includes('Bash')) return toolUse('Bash', { command: 'sleep 0.2', description: 'wait a moment' }, { usage });
    return text('side answer', { usage });
  }
  if (request.lastUserText.includes('HOLD')) return text(Array.from({ length: 10 }, (_, index) => `part${index} `), { delayMs: 200 });
  return context.defaultScript(request, context);
};

describe('limits shared by replicas on one PostgreSQL database', () => {
  let model: ScriptedModel;
  let slowModel: SlowedModel;
  let cluster: ReplicaSet | null = null;

  beforeAll(async () => {
    model = await startScriptedModel({ script });
    slowModel = await slowedModel(model.url, answerDelayMs);
  });
  afterEach(async () => {
    await cluster?.stop();
    cluster = null;
  });
  afterAll(async () => {
    await slowModel?.close();
    await model?.close();
  });

  async function start(env: Record<string, string> = {}): Promise<ReplicaSet> {
    cluster = await startReplicas({
      count: 3,
      // No replica fails here: a lease as long as in production keeps a replica slowed down by this busy machine from
      // losing its conversations to another one mid-test.
      leaseSeconds: 15,
      env: {
        ANTHROPIC_BASE_URL: slowModel.url,
        ANTHROPIC_API_KEY: platformSecret,
        AGENTYARD_MODEL_MAX_RETRIES: '0',
        AGENTYARD_PAUSE_AFTER_SECONDS: '0',
        AGENTYARD_MODEL_PRICES: prices,
        // Only the quotas limit sandboxes here, not each replica's own bound per user.
        AGENTYARD_MAX_SANDBOXES_PER_USER: '10',
        ...env,
      },
    });
    return cluster;
  }

  /** Registers the administrator (the first account) and a user on the first replica; sets the user's quota there. */
  async function accounts(set: ReplicaSet, limits: Record<string, number>): Promise<{ user: ApiClient; userId: string }> {
    const first = new ApiClient(set.replicas[0]!.url);
    const admin = await first.registerWithToken('admin@example.com');
    const user = await first.registerWithToken('user@example.com');
    const userId = (await user.request('GET', '/api/auth/me')).body.user.id as string;
    const override = await admin.request('PUT', `/api/admin/quotas/${userId}`, limits);
    expect(override.status, JSON.stringify(override.body)).toBe(200);
    return { user, userId };
  }

  /** A client of `user` talking to another replica. */
  const on = (user: ApiClient, url: string): ApiClient => new ApiClient(url, user.auth);

  it('lets a cost quota crossed while three replicas run turns at once overshoot by at most one model request per replica', async () => {
    const set = await start();
    const limitUsd = 1;
    const { user, userId } = await accounts(set, { costPerDayUsd: limitUsd });

    // One conversation per replica, its message sent to that replica (which then runs it), all at once.
    const work = await Promise.all(
      set.replicas.map(async (replica) => {
        const client = on(user, replica.url);
        const created = await client.request('POST', '/api/conversations', {});
        expect(created.status).toBe(201);
        return { replica, client, conversationId: created.body.id as string };
      }),
    );
    const sent = await Promise.all(work.map((item) => item.client.request('POST', `/api/conversations/${item.conversationId}/messages`, { text: 'COSTLOOP until refused' })));
    for (const response of sent) expect(response.status, JSON.stringify(response.body)).toBe(202);
    const ends = await Promise.all(
      work.map(async (item, index) => {
        const events = await item.client.readEvents(item.conversationId, { until: untilTurnEnded(sent[index]!.body.turnId), timeoutMs: 120_000 });
        return events.at(-1)!;
      }),
    );

    // Every turn went on until the shared quota refused its next model request.
    for (const end of ends) expect(end.data, JSON.stringify(end.data)).toMatchObject({ status: 'failed', error: { code: 'QUOTA_EXCEEDED' } });
    // Each ran on the replica it was sent to: three replicas ran turns at once.
    const runs = turnRuns(set.replicas);
    for (const item of work) expect(runs.find((run) => run.conversationId === item.conversationId)?.replicaId).toBe(item.replica.id);

    const records = await set.store.listUsage({ userId });
    const perConversation = work.map((item) => records.filter((record) => record.conversationId === item.conversationId).length);
    expect(perConversation.every((count) => count > 0), `requests per conversation: ${perConversation.join(', ')}`).toBe(true);
    expect(records.every((record) => record.usage.inputTokens === tokensPerRequest)).toBe(true);
    const spentUsd = records.length * costPerRequest;
    const overshootUsd = spentUsd - limitUsd;
    // The quota was reached, and passed by no more than one request per replica (each CLI asks one at a time).
    expect(spentUsd).toBeGreaterThanOrEqual(limitUsd - 1e-9);
    expect(overshootUsd, `${records.length} requests of $${costPerRequest} against $${limitUsd}; per conversation ${perConversation.join(', ')}`).toBeLessThanOrEqual(
      set.replicas.length * costPerRequest + 1e-9,
    );
    // Every replica reports the same use, read from the store.
    for (const replica of set.replicas) {
      const quota = await on(user, replica.url).request('GET', '/api/quota');
      expect(quota.body.quotas.find((state: { quota: string }) => state.quota === 'costPerDayUsd')).toMatchObject({ limit: limitUsd, used: Math.round(spentUsd * 1e6) / 1e6 });
    }
  });

  it('never runs more sandboxes than a concurrent-sandbox quota of N when many conversations start at once across replicas', async () => {
    const set = await start();
    const limit = 2;
    const { user, userId } = await accounts(set, { concurrentSandboxes: limit });

    const work = await Promise.all(
      Array.from({ length: 7 }, async (_, index) => {
        const replica = set.replicas[index % set.replicas.length]!;
        const client = on(user, replica.url);
        const created = await client.request('POST', '/api/conversations', {});
        expect(created.status).toBe(201);
        return { replica, client, conversationId: created.body.id as string };
      }),
    );

    // The sandboxes running an agent in the data directory, looked at every 50 ms while the turns run.
    let mostAgents = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        mostAgents = Math.max(mostAgents, sandboxesWithAgent(set.dataDir));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    try {
      const sent = await Promise.all(work.map((item) => item.client.request('POST', `/api/conversations/${item.conversationId}/messages`, { text: 'HOLD on a moment' })));
      const outcomes = await Promise.all(
        sent.map(async (response, index): Promise<string> => {
          if (response.status === 429) {
            expect(response.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota: 'concurrentSandboxes', limit } });
            return 'refused at sending';
          }
          expect(response.status, JSON.stringify(response.body)).toBe(202);
          const item = work[index]!;
          const events: StreamedEvent[] = await item.client.readEvents(item.conversationId, { until: untilTurnEnded(response.body.turnId), timeoutMs: 120_000 });
          const end = events.at(-1)!.data as { status: string; error?: { code: string; message: string } };
          if (end.status === 'completed') return 'completed';
          expect(end, JSON.stringify(end)).toMatchObject({ status: 'failed', error: { code: 'QUOTA_EXCEEDED' } });
          expect(end.error!.message).toContain(`concurrent sandbox quota (${limit})`);
          return 'refused at start';
        }),
      );
      // The sandboxes stay up (they idle for minutes): exactly N conversations ran, every other one was refused.
      expect(outcomes.filter((outcome) => outcome === 'completed'), outcomes.join(', ')).toHaveLength(limit);
      expect(outcomes.filter((outcome) => outcome !== 'completed')).toHaveLength(work.length - limit);
    } finally {
      sampling = false;
      await sampler;
    }

    expect(mostAgents).toBeGreaterThan(0);
    expect(mostAgents).toBeLessThanOrEqual(limit);
    // The store agrees: never more than N sessions open at once, and only those that ran were counted.
    const sessions = await set.store.listSandboxSessions(userId, '2000-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z');
    expect(sessions.filter((session) => session.endedAt === null)).toHaveLength(limit);
    expect(mostOverlapping(sessions.map((session) => [Date.parse(session.startedAt), session.endedAt === null ? Infinity : Date.parse(session.endedAt)]))).toBeLessThanOrEqual(limit);
  });

  it('holds a rate limit exactly, whichever replicas the requests reach', async () => {
    const perToken = 20;
    const set = await start({ AGENTYARD_RATE_LIMIT_PER_TOKEN: String(perToken), AGENTYARD_RATE_LIMIT_WINDOW_SECONDS: '300' });
    const user = await new ApiClient(set.replicas[0]!.url).registerWithToken('rate@example.com');

    // 60 requests with one token, six at a time, spread over the three replicas, all within one window.
    const answers: Array<{ status: number; remaining: string | null }> = [];
    for (let round = 0; round < 10; round += 1) {
      const batch = await Promise.all(
        Array.from({ length: 6 }, (_, index) => on(user, set.replicas[index % set.replicas.length]!.url).request('GET', '/api/agents')),
      );
      answers.push(...batch.map((answer) => ({ status: answer.status, remaining: answer.headers.get('ratelimit-remaining') })));
    }
    const allowed = answers.filter((answer) => answer.status === 200);
    expect(allowed).toHaveLength(perToken);
    expect(answers.filter((answer) => answer.status === 429)).toHaveLength(answers.length - perToken);
    // Each allowed request was counted once: the remaining counts go down from 19 to 0, each seen once.
    expect(allowed.map((answer) => Number(answer.remaining)).sort((a, b) => a - b)).toEqual(Array.from({ length: perToken }, (_, index) => index));
    // And every replica goes on refusing.
    for (const replica of set.replicas) {
      const refused = await on(user, replica.url).request('GET', '/api/agents');
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('RATE_LIMITED');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });
});

/** How many local sandboxes of the data directory run a Claude CLI (one mount namespace each; a CLI may be several processes). */
function sandboxesWithAgent(dataDir: string): number {
  const sandboxes = new Set<string>();
  for (const pid of sandboxProcesses(dataDir, 'claude')) {
    try {
      sandboxes.add(readlinkSync(`/proc/${pid}/ns/mnt`));
    } catch {
      // the process ended while we looked
    }
  }
  return sandboxes.size;
}

interface SlowedModel {
  url: string;
  close(): Promise<void>;
}

/**
 * The model behind a proxy that answers each model request `delayMs` late, as a real model takes a while: the
 * replicas' requests overlap, so the quota is crossed while some are in flight.
 */
async function slowedModel(target: string, delayMs: number): Promise<SlowedModel> {
  const upstream = new URL(target);
  const server = createServer((request, response) => {
    const body: Buffer[] = [];
    request.on('data', (chunk: Buffer) => body.push(chunk));
    request.on('end', () => {
      const forward = (): void => {
        const forwarded = httpRequest(
          { hostname: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers: request.headers },
          (answer) => {
            response.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(response);
          },
        );
        forwarded.on('error', () => response.destroy());
        forwarded.end(Buffer.concat(body));
      };
      if (request.method === 'POST' && request.url?.startsWith('/v1/messages')) setTimeout(forward, delayMs);
      else forward();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The most intervals [start, end) that overlap at one moment. */
function mostOverlapping(intervals: Array<[number, number]>): number {
  const edges = intervals.flatMap(([start, end]): Array<[number, number]> => [
    [start, 1],
    [end, -1],
  ]);
  // An interval that ends where another starts does not overlap it.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let most = 0;
  for (const [, change] of edges) {
    open += change;
    most = Math.max(most, open);
  }
  return most;
}
