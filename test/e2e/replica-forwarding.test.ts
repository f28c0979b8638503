import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, untilTurnEnded, type StreamedEvent } from '../support/api-client.ts';
import { platformSecret } from '../support/platform.ts';
import { eventually, startReplicas, turnRuns, type Replica, type ReplicaSet } from '../support/replicas.ts';
import { startScriptedModel, text, type Script, type ScriptedModel } from '../support/scripted-model.ts';
import { TerminalClient } from '../support/terminal-client.ts';

/** `SLOW<n>`: n text deltas 200 ms apart (the slow scenario, long enough for the test to act while it runs). */
const script: Script = (request, context) => {
  const slow = /SLOW(\d+)/.exec(request.lastUserText);
  if (slow) return text(Array.from({ length: Number(slow[1]) }, (_, position) => `chunk${position} `), { delayMs: 200 });
  return context.defaultScript(request, context);
};

const forwardedHeader = 'x-agentyard-forwarded';

describe('interrupts and terminals from a replica that does not hold the sandbox', () => {
  let model: ScriptedModel;
  let set: ReplicaSet;
  let r1: Replica;
  let r2: Replica;
  /** Alice with an API token, and with the session cookie (a browser). */
  let alice: { token: string };
  let aliceCookie: { cookie: string };
  let bob: { token: string };

  beforeAll(async () => {
    model = await startScriptedModel({ script });
    set = await startReplicas({
      count: 2,
      // Long enough that a loaded machine does not move a lease during a test.
      leaseSeconds: 10,
      env: {
        ANTHROPIC_BASE_URL: model.url,
        ANTHROPIC_API_KEY: platformSecret,
        AGENTYARD_MODEL_MAX_RETRIES: '0',
        AGENTYARD_PAUSE_AFTER_SECONDS: '0',
        AGENTYARD_TERMINALS_PER_CONVERSATION: '2',
      },
    });
    r1 = set.replica('r1');
    r2 = set.replica('r2');
    const session = await new ApiClient(r1.url).register('alice@example.com');
    aliceCookie = session.auth as { cookie: string };
    const token = await session.request('POST', '/api/tokens', { name: 'forwarding' });
    alice = { token: token.body.token as string };
    bob = (await new ApiClient(r2.url).registerWithToken('bob@example.com')).auth as { token: string };
  }, 180_000);
  afterAll(async () => {
    await set?.stop();
    await model?.close();
  });

  const on = (replica: Replica, auth: ApiClient['auth'] = alice): ApiClient => new ApiClient(replica.url, auth);
  const wsUrl = (replica: Replica, conversationId: string, query = ''): string => `${replica.url.replace(/^http/, 'ws')}/api/conversations/${conversationId}/terminal${query}`;

  async function createConversation(): Promise<string> {
    const created = await on(r2).request('POST', '/api/conversations', {});
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body.id as string;
  }

  /** Sends the message to r1, which claims the lease and runs the turn; resolves once r1 holds the lease. */
  async function runOnR1(conversationId: string, message: string): Promise<string> {
    const sent = await on(r1).request('POST', `/api/conversations/${conversationId}/messages`, { text: message });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    const turnId = sent.body.turnId as string;
    const run = await eventually(`a replica logs "turn started" for ${turnId}`, () => turnRuns(set.replicas).find((candidate) => candidate.turnId === turnId), {
      context: () => set.describe(),
    });
    expect(run.replicaId, set.describe()).toBe('r1');
    expect((await set.store.getLease(conversationId))?.replicaId).toBe('r1');
    return turnId;
  }

  /** Reads the conversation's events through `replica` (any replica streams them) until `until` holds. */
  const eventsVia = (replica: Replica, conversationId: string, until: (events: StreamedEvent[]) => boolean): Promise<StreamedEvent[]> =>
    on(replica).readEvents(conversationId, { until, timeoutMs: 60_000 });
  const firstDelta = (events: StreamedEvent[]): boolean => events.some((event) => event.event === 'message.delta');
  const endOf = (events: StreamedEvent[], turnId: string): StreamedEvent | undefined => events.find((event) => event.event === 'turn.ended' && event.data.turnId === turnId);

  /** The replica's JSON log lines that `match`. */
  function logged(replica: Replica, match: (entry: Record<string, any>) => boolean): Record<string, any>[] {
    return replica.server.log.flatMap((line) => {
      try {
        const entry = JSON.parse(line) as Record<string, any>;
        return match(entry) ? [entry] : [];
      } catch {
        return [];
      }
    });
  }
  const requestsFor = (replica: Replica, path: string): number =>
    logged(replica, (entry) => entry.msg === 'incoming request' && typeof entry.req?.url === 'string' && entry.req.url.startsWith(path)).length;

  /** The status and body a refused terminal upgrade answers with; 101 when it opened (it is closed again). */
  async function upgrade(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    try {
      const client = await TerminalClient.connect(url, headers);
      client.close();
      return { status: 101, body: '' };
    } catch (error) {
      const refusal = error as { status?: number; body?: string; message: string };
      return { status: refusal.status ?? 0, body: refusal.body ?? refusal.message };
    }
  }

  it('stops a turn running on r1 when the interrupt reaches r2, with a browser’s cookie and Origin', async () => {
    const conversationId = await createConversation();
    const turnId = await runOnR1(conversationId, 'SLOW100 stop me from the other replica');
    await eventsVia(r2, conversationId, firstDelta);

    const interrupted = await new ApiClient(r2.url, aliceCookie).request('POST', `/api/conversations/${conversationId}/interrupt`, undefined, { origin: r2.url });
    expect(interrupted.status, `${JSON.stringify(interrupted.body)}\n${set.describe()}`).toBe(200);
    expect(interrupted.body).toEqual({ interrupted: true });

    const events = await eventsVia(r2, conversationId, untilTurnEnded(turnId));
    expect(endOf(events, turnId)?.data.status).toBe('interrupted');
    // r2 forwarded it and r1 answered it.
    expect(logged(r2, (entry) => entry.msg === 'request forwarded to the replica holding the conversation' && entry.holder === 'r1' && entry.status === 200)).toHaveLength(1);
    expect(requestsFor(r1, `/api/conversations/${conversationId}/interrupt`)).toBe(1);
    // Nothing runs any more: a second interrupt through r2 finds no turn (r1 still holds the idle sandbox and answers).
    const again = await on(r2).request('POST', `/api/conversations/${conversationId}/interrupt`);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body).toEqual({ interrupted: false });
  });

  it('opens a terminal through r2 in the sandbox r1 runs, passing frames and close codes both ways', async () => {
    const conversationId = await createConversation();
    const turnId = await runOnR1(conversationId, 'SCN_TOOLS BASH<<echo written-by-the-agent-on-r1 > agent-file.txt>>');
    await eventsVia(r1, conversationId, untilTurnEnded(turnId));
    // The sandbox stays live on r1 after the turn (it idles for minutes), and so does r1's lease.
    expect((await set.store.getLease(conversationId))?.replicaId).toBe('r1');

    const session = `relayed-${Date.now()}`;
    const first = await TerminalClient.connect(wsUrl(r2, conversationId, `?session=${session}&cols=100&rows=30`), { authorization: `Bearer ${alice.token}` });
    expect(await first.waitForMessage('attached')).toMatchObject({ session, start: 0, resumed: false });
    await first.waitFor(/agent@agentyard/);
    first.type('echo "answer=$((6*7))"; cat agent-file.txt; stty size\r');
    await first.waitFor(/^answer=42\r?$/m);
    await first.waitFor(/^written-by-the-agent-on-r1\r?$/m);
    await first.waitFor(/^30 100\r?$/m);
    // Text frames go through too: a resize control message reaches the shell on r1.
    first.resize(90, 20);
    await expect
      .poll(
        async () => {
          first.type('stty size\r');
          await new Promise((resolve) => setTimeout(resolve, 500));
          return /^20 90\r?$/m.test(first.output);
        },
        { timeout: 15_000 },
      )
      .toBe(true);

    // The shell is r1's: r1 started it, r2 only relays it.
    expect(logged(r1, (entry) => entry.msg === 'terminal opened' && entry.conversationId === conversationId)).toHaveLength(1);
    expect(logged(r2, (entry) => entry.msg === 'terminal opened' && entry.conversationId === conversationId)).toHaveLength(0);
    expect(logged(r2, (entry) => entry.msg === 'terminal relayed to the replica holding the conversation' && entry.holder === 'r1')).not.toHaveLength(0);

    // A browser tab (cookie and r2's Origin) takes the same shell over: r1 closes the first socket with 4001, and r2
    // passes that code on.
    const second = await TerminalClient.connect(wsUrl(r2, conversationId, `?session=${session}&offset=${first.received}`), { cookie: aliceCookie.cookie, origin: r2.url });
    expect(await second.waitForMessage('attached')).toMatchObject({ session, resumed: true });
    expect((await first.waitClosed()).code).toBe(4001);
    second.type('echo "second=$((6*7))"\r');
    await second.waitFor(/^second=42\r?$/m);

    // The shell exits on r1: its exit message and close code 1000 come through.
    second.type('exit\r');
    expect(await second.waitForMessage('exit')).toEqual({ type: 'exit', code: 0, signal: null });
    expect((await second.waitClosed()).code).toBe(1000);
  });

  it('counts relayed terminals against the bounds of the replica they came through', async () => {
    const conversationId = await createConversation();
    const turnId = await runOnR1(conversationId, 'hello');
    await eventsVia(r1, conversationId, untilTurnEnded(turnId));
    const headers = { authorization: `Bearer ${alice.token}` };
    const open = [
      await TerminalClient.connect(wsUrl(r2, conversationId, '?session=bound-one'), headers),
      await TerminalClient.connect(wsUrl(r2, conversationId, '?session=bound-two'), headers),
    ];
    for (const terminal of open) await terminal.waitForMessage('attached');
    const before = requestsFor(r1, `/api/conversations/${conversationId}/terminal`);

    const third = await upgrade(wsUrl(r2, conversationId, '?session=bound-three'), headers);
    expect(third.status).toBe(429);
    expect(JSON.parse(third.body).error.code).toBe('TOO_MANY_TERMINALS');
    // r2 refused it itself: nothing went to r1.
    expect(requestsFor(r1, `/api/conversations/${conversationId}/terminal`)).toBe(before);

    for (const terminal of open) {
      terminal.type('exit\r');
      await terminal.waitClosed();
    }
  });

  it('the holder checks the credential of a forwarded request itself, and the forwarding header grants nothing', async () => {
    const conversationId = await createConversation();
    const turnId = await runOnR1(conversationId, 'SLOW40 keep running');
    await eventsVia(r1, conversationId, firstDelta);
    const interruptPath = `/api/conversations/${conversationId}/interrupt`;

    // Straight to the holder with the forwarding header: a bad token, none at all, another user's.
    const badToken = await on(r1, { token: 'ay_not-a-real-token' }).request('POST', interruptPath, undefined, { [forwardedHeader]: 'r2' });
    expect(badToken.status).toBe(401);
    expect(badToken.body.error.code).toBe('UNAUTHORIZED');
    const anonymous = await on(r1, null).request('POST', interruptPath, undefined, { [forwardedHeader]: 'r2' });
    expect(anonymous.status).toBe(401);
    const otherUser = await on(r1, bob).request('POST', interruptPath, undefined, { [forwardedHeader]: 'r2' });
    expect(otherUser.status).toBe(404);
    for (const refused of [badToken, anonymous, otherUser]) expect(JSON.stringify(refused.body)).not.toMatch(/keep running|chunk|interrupted/);

    expect((await upgrade(wsUrl(r1, conversationId), { authorization: 'Bearer ay_not-a-real-token', [forwardedHeader]: 'r2' })).status).toBe(401);
    expect((await upgrade(wsUrl(r1, conversationId), { origin: r1.url, [forwardedHeader]: 'r2' })).status).toBe(401);
    expect((await upgrade(wsUrl(r1, conversationId), { authorization: `Bearer ${bob.token}`, [forwardedHeader]: 'r2' })).status).toBe(404);

    // Through r2: a bad credential or another user is refused there, and nothing reaches r1.
    const before = requestsFor(r1, interruptPath);
    expect((await on(r2, { token: 'ay_not-a-real-token' }).request('POST', interruptPath)).status).toBe(401);
    expect((await on(r2, bob).request('POST', interruptPath)).status).toBe(404);
    expect((await upgrade(wsUrl(r2, conversationId), { authorization: `Bearer ${bob.token}` })).status).toBe(404);

    // The loop guard: a request that says it was forwarded is not forwarded again; r2 does not hold the sandbox.
    const looped = await on(r2).request('POST', interruptPath, undefined, { [forwardedHeader]: 'r1' });
    expect(looped.status).toBe(503);
    expect(looped.body.error).toMatchObject({ code: 'SANDBOX_UNAVAILABLE', message: expect.stringMatching(/forwarded by another server replica/) });
    const loopedTerminal = await upgrade(wsUrl(r2, conversationId), { authorization: `Bearer ${alice.token}`, [forwardedHeader]: 'r1' });
    expect(loopedTerminal.status).toBe(503);
    expect(JSON.parse(loopedTerminal.body).error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(requestsFor(r1, interruptPath)).toBe(before);

    // None of it touched the turn: it ran to its end.
    const events = await eventsVia(r1, conversationId, untilTurnEnded(turnId));
    expect(endOf(events, turnId)?.data.status, set.describe()).toBe('completed');
  });
});
