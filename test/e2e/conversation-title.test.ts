import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

describe('conversation titles', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  beforeAll(async () => {
    test = await startTestPlatform();
    alice = await test.api.registerWithToken('alice@example.com');
  });
  afterAll(() => test?.close());

  const send = async (conversationId: string, text: string): Promise<void> => {
    const sent = await alice.request('POST', `/api/conversations/${conversationId}/messages`, { text });
    expect(sent.status).toBe(202);
    await alice.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId) });
  };
  const titleOf = async (conversationId: string): Promise<string> => (await alice.request('GET', `/api/conversations/${conversationId}`)).body.title;

  it('names an untitled conversation after its first message, once, and a rename still wins', async () => {
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    expect(conversation.title).toBe('New conversation');
    await send(conversation.id, '\n  Please   write a parser for the configuration file format we use in the deploy scripts\nwith tests');
    const title = 'Please write a parser for the configuration file format we…';
    expect(await titleOf(conversation.id)).toBe(title);
    const listed = await alice.request('GET', '/api/conversations');
    expect(listed.body.conversations.find((entry: { id: string }) => entry.id === conversation.id).title).toBe(title);

    await send(conversation.id, 'a second message does not rename it');
    expect(await titleOf(conversation.id)).toBe(title);

    const renamed = await alice.request('PATCH', `/api/conversations/${conversation.id}`, { title: 'Parser work' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.title).toBe('Parser work');
    await send(conversation.id, 'and a third');
    expect(await titleOf(conversation.id)).toBe('Parser work');
  });

  it('keeps a title given at creation or by a rename before the first message', async () => {
    const { body: named } = await alice.request('POST', '/api/conversations', { title: 'My own title' });
    await send(named.id, 'hello there');
    expect(await titleOf(named.id)).toBe('My own title');

    const { body: renamed } = await alice.request('POST', '/api/conversations', {});
    await alice.request('PATCH', `/api/conversations/${renamed.id}`, { title: 'Renamed early' });
    await send(renamed.id, 'hello again');
    expect(await titleOf(renamed.id)).toBe('Renamed early');
  });
});
