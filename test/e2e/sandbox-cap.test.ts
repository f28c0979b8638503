import { existsSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.ts';
import { type ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { agentProcesses } from '../support/host-processes.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { hang } from '../support/scripted-model.ts';

/** How many sandboxes of the data directory run a Claude CLI: containers on Docker, mount namespaces on the local backend. */
async function sandboxesWithAgent(dataDir: string): Promise<number> {
  const sandboxes = new Set<string>();
  for (const agent of await agentProcesses(dataDir)) {
    if (agent.includes('/')) sandboxes.add(agent.split('/')[0]!);
    else {
      try {
        sandboxes.add(readlinkSync(`/proc/${agent}/ns/mnt`));
      } catch {
        // the process ended while we looked
      }
    }
  }
  return sandboxes.size;
}

describe('sandboxes per user (default cap: 3)', () => {
  let test: TestPlatform;
  let admin: ApiClient;
  let alice: ApiClient;
  let bob: ApiClient;
  /** The conversations that won the race, and the turns they are holding. */
  let winners: { id: string; turnId: string }[] = [];

  beforeAll(async () => {
    test = await startTestPlatform();
    // A message with HOLD keeps its turn running (the model never answers) until it is interrupted.
    // Only the newest prompt counts: the CLI may fold an interrupted one into the next user message.
    test.model.setScript((request, context) => (request.lastUserText.split('\n').at(-1)!.includes('HOLD') ? hang() : context.defaultScript(request, context)));
    admin = await test.api.registerWithToken('admin@example.com');
    alice = await test.api.registerWithToken('alice@example.com');
    bob = await test.api.registerWithToken('bob@example.com');
  });
  afterAll(() => test?.close());

  const send = (client: ApiClient, conversationId: string, text: string) => client.request('POST', `/api/conversations/${conversationId}/messages`, { text });
  const newConversation = async (client: ApiClient, title: string): Promise<string> => (await client.request('POST', '/api/conversations', { title })).body.id;
  /** Alice's conversations with a running sandbox, as the platform reports them. */
  const aliceLive = async (): Promise<string[]> =>
    (await admin.request('GET', '/api/admin/activity')).body.conversations
      .filter((entry: { live: boolean; userEmail: string }) => entry.live && entry.userEmail === 'alice@example.com')
      .map((entry: { conversationId: string }) => entry.conversationId)
      .sort();

  it('starts exactly 3 of 20 conversations messaged at once and refuses the other 17, naming the bound', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, (_, index) => newConversation(alice, `race ${index}`)));
    // Straight to the conversations service, in one tick: over HTTP on SQLite each request runs to its end before the
    // next one starts, and the checks would never race.
    const user = (await test.platform.store.getUser((await alice.request('GET', '/api/auth/me')).body.user.id))!;
    const answers = await Promise.all(
      ids.map((id, index) => test.platform.conversations.send(user, id, `HOLD race ${index} end`).then((turn) => ({ turnId: turn.id }), (error: AppError) => error)),
    );

    const refusals = answers.filter((answer) => answer instanceof AppError);
    expect(refusals).toHaveLength(17);
    for (const refused of refusals) {
      expect(refused).toMatchObject({ code: 'SANDBOX_LIMIT_REACHED', status: 429, details: { bound: 'sandboxesPerUser', limit: 3 } });
      expect(refused.message).toContain('AGENTYARD_MAX_SANDBOXES_PER_USER');
    }
    winners = ids.flatMap((id, index) => {
      const answer = answers[index]!;
      return 'turnId' in answer ? [{ id, turnId: answer.turnId }] : [];
    });
    expect(winners).toHaveLength(3);

    await expect.poll(aliceLive, { timeout: 90_000, interval: 250 }).toEqual(winners.map((winner) => winner.id).sort());
    await expect.poll(() => sandboxesWithAgent(test.dataDir), { timeout: 90_000, interval: 250 }).toBe(3);
    // A refused message was never stored.
    const loser = ids.find((id) => !winners.some((winner) => winner.id === id))!;
    expect((await alice.request('GET', `/api/conversations/${loser}`)).body.turns).toEqual([]);
  });

  it('stops the least recently used idle sandbox to make room, keeping its workspace for the next message', async () => {
    // Ended in this order, `first` is the least recently used once all three are idle.
    for (const winner of winners) {
      expect((await alice.request('POST', `/api/conversations/${winner.id}/interrupt`)).status).toBe(200);
      await alice.readEvents(winner.id, { until: untilTurnEnded(winner.turnId), timeoutMs: 90_000 });
    }
    const [first, second, third] = winners.map((winner) => winner.id) as [string, string, string];
    expect(await aliceLive()).toEqual([first, second, third].sort());
    writeFileSync(path.join(test.workspaceDir(first), 'kept.txt'), 'KEPT-IN-WORKSPACE\n', { mode: 0o644 });

    const fourth = await newConversation(alice, 'fourth');
    expect((await send(alice, fourth, 'HOLD fourth')).status).toBe(202);
    await expect.poll(aliceLive, { timeout: 90_000, interval: 250 }).toEqual([second, third, fourth].sort());
    expect(existsSync(path.join(test.workspaceDir(first), 'kept.txt'))).toBe(true);

    // `first` comes back as after an idle stop, with its workspace, making room in its turn: `second` is now the least
    // recently used idle one.
    const resumed = await send(alice, first, 'SCN_TOOLS BASH<<cat kept.txt>>');
    expect(resumed.status).toBe(202);
    const events = await alice.readEvents(first, { until: untilTurnEnded(resumed.body.turnId), timeoutMs: 90_000 });
    expect(events.at(-1)!.data.status).toBe('completed');
    expect(events.find((event) => event.event === 'tool.ended')?.data.output).toContain('KEPT-IN-WORKSPACE');
    expect(await aliceLive()).toEqual([first, third, fourth].sort());
  });

  it('refuses a message that needs a sandbox only while all of the user’s are busy; other users are unaffected', async () => {
    const [first, second, third] = winners.map((winner) => winner.id) as [string, string, string];
    // `fourth` is still held; make `first` and `third` busy too.
    expect((await send(alice, first, 'HOLD first again')).status).toBe(202);
    expect((await send(alice, third, 'HOLD third again')).status).toBe(202);

    const refused = await send(alice, second, 'is there room?');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'SANDBOX_LIMIT_REACHED', details: { bound: 'sandboxesPerUser', limit: 3 } });
    expect(refused.body.error.message).toContain('all 3 of your sandboxes are busy');
    // A conversation whose sandbox already runs still takes messages (they wait behind its turn).
    expect((await send(alice, first, 'after the hold')).status).toBe(202);

    const bobs = await newConversation(bob, 'bob');
    expect((await send(bob, bobs, 'hello from bob')).status).toBe(202);
    expect((await aliceLive()).length).toBe(3);
  });
});
