import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiClient, type StreamedEvent, untilTurnEnded } from '../support/api-client.ts';
import { AppError } from '../../src/core/errors.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { hang } from '../support/scripted-model.ts';

describe('messages waiting behind a running turn', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let bob: ApiClient;

  beforeAll(async () => {
    // Small bounds keep the test short; the defaults (10 and 30) are checked in the configuration test.
    test = await startTestPlatform({ env: { AGENTYARD_MAX_QUEUED_PER_CONVERSATION: '2', AGENTYARD_MAX_QUEUED_PER_USER: '3' } });
    // A message with HOLD keeps its turn running (the model never answers) until it is interrupted.
    // Only the newest prompt counts: the CLI may fold an interrupted one into the next user message.
    test.model.setScript((request, context) => (request.lastUserText.split('\n').at(-1)!.includes('HOLD') ? hang() : context.defaultScript(request, context)));
    alice = await test.api.registerWithToken('alice@example.com');
    bob = await test.api.registerWithToken('bob@example.com');
  });
  afterAll(() => test?.close());

  const send = (client: ApiClient, conversationId: string, text: string) => client.request('POST', `/api/conversations/${conversationId}/messages`, { text });
  const newConversation = async (client: ApiClient): Promise<string> => (await client.request('POST', '/api/conversations', {})).body.id;
  /** `until` helper: one of the turns has started. */
  const untilStarted =
    (...turnIds: string[]) =>
    (events: StreamedEvent[]): boolean =>
      events.some((event) => event.event === 'turn.started' && turnIds.includes(event.data.turnId));
  /** Sends a message whose turn stays running until interrupted, and waits until it has started (the queue is empty). */
  const hold = async (client: ApiClient, conversationId: string, text: string): Promise<string> => {
    const sent = await send(client, conversationId, `HOLD ${text}`);
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    await client.readEvents(conversationId, { until: untilStarted(sent.body.turnId), timeoutMs: 90_000 });
    return sent.body.turnId;
  };
  /**
   * Sends the messages at once straight to the conversations service. Over HTTP on SQLite each request runs to its end
   * before the next one starts; only this way do the bound checks really race.
   */
  const sendAtOnce = async (client: ApiClient, conversationId: string, texts: string[]): Promise<Array<{ turnId: string } | AppError>> => {
    const user = (await test.platform.store.getUser((await client.request('GET', '/api/auth/me')).body.user.id))!;
    return Promise.all(texts.map((text) => test.platform.conversations.send(user, conversationId, text).then((turn) => ({ turnId: turn.id }), (error: AppError) => error)));
  };
  /** Interrupts the held turn and waits until one of the waiting ones has started: the queue has moved. */
  const release = async (client: ApiClient, conversationId: string, held: string, waiting: string[]): Promise<void> => {
    expect((await client.request('POST', `/api/conversations/${conversationId}/interrupt`)).status).toBe(200);
    await client.readEvents(conversationId, { until: untilTurnEnded(held), timeoutMs: 90_000 });
    await client.readEvents(conversationId, { until: untilStarted(...waiting), timeoutMs: 90_000 });
  };

  it('of 10 messages sent at once behind a running turn, accepts exactly the per-conversation bound, refuses the rest naming it, and takes more once the queue moves', async () => {
    const conversation = await newConversation(alice);
    const held = await hold(alice, conversation, 'first');

    const answers = await sendAtOnce(alice, conversation, Array.from({ length: 10 }, (_, index) => `queued ${index}`));
    const queued = answers.flatMap((answer) => ('turnId' in answer ? [answer.turnId] : []));
    const refusals = answers.filter((answer) => answer instanceof AppError);
    expect([queued.length, refusals.length]).toEqual([2, 8]);
    for (const refused of refusals) expect(refused).toMatchObject({ code: 'QUEUE_FULL', status: 429, details: { bound: 'queuedPerConversation', limit: 2 } });
    // Over HTTP: 429 with the bound named.
    const refused = await send(alice, conversation, 'one too many');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'QUEUE_FULL', details: { bound: 'queuedPerConversation', limit: 2 } });
    expect(refused.body.error.message).toContain('AGENTYARD_MAX_QUEUED_PER_CONVERSATION');
    expect((await alice.request('GET', `/api/conversations/${conversation}`)).body.turns).toHaveLength(3);

    await release(alice, conversation, held, queued);
    const again = await send(alice, conversation, 'room again');
    expect(again.status).toBe(202);
    // Drained before the next test counts alice's waiting messages.
    const events = await alice.readEvents(conversation, { until: untilTurnEnded(again.body.turnId), timeoutMs: 90_000 });
    expect(events.at(-1)!.data.status).toBe('completed');
  });

  it('bounds the messages waiting across one user’s conversations, leaving other users alone', async () => {
    const [one, two] = [await newConversation(alice), await newConversation(alice)];
    const heldOne = await hold(alice, one, 'one');
    await hold(alice, two, 'two');
    const waiting = [await send(alice, one, 'one a'), await send(alice, one, 'one b'), await send(alice, two, 'two a')];
    expect(waiting.map((answer) => answer.status)).toEqual([202, 202, 202]);

    const refused = await send(alice, two, 'two b');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'QUEUE_FULL', details: { bound: 'queuedPerUser', limit: 3 } });
    expect(refused.body.error.message).toContain('AGENTYARD_MAX_QUEUED_PER_USER');

    const bobs = await newConversation(bob);
    expect((await send(bob, bobs, 'bob a')).status).toBe(202);
    expect((await send(bob, bobs, 'bob b')).status).toBe(202);

    // Once `one`'s queue moves (its next turn starts), alice's messages fit again.
    await release(alice, one, heldOne, [waiting[0]!.body.turnId, waiting[1]!.body.turnId]);
    const accepted = await send(alice, two, 'two b');
    expect(accepted.status).toBe(202);

    // The turns still held end when the platform closes.
  });
});
