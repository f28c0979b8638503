import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

describe('open event streams', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let bob: ApiClient;
  const open: AbortController[] = [];

  beforeAll(async () => {
    test = await startTestPlatform({ env: { AGENTYARD_EVENT_STREAMS_PER_USER: '3', AGENTYARD_EVENT_STREAMS_PER_CONVERSATION: '2' } });
    alice = await test.api.registerWithToken('alice@example.com');
    bob = await test.api.registerWithToken('bob@example.com');
  });
  afterAll(async () => {
    for (const controller of open) controller.abort();
    await test?.close();
  });

  /** Opens a stream; when the server lets it in, it stays open until aborted. */
  async function stream(client: ApiClient, conversationId: string): Promise<{ status: number; body: any; controller: AbortController }> {
    const controller = new AbortController();
    const response = await fetch(`${client.baseUrl}/api/conversations/${conversationId}/events`, {
      headers: { ...client.authHeaders, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    if (response.status === 200) {
      open.push(controller);
      return { status: 200, body: null, controller };
    }
    return { status: response.status, body: await response.json(), controller };
  }

  const conversation = async (client: ApiClient): Promise<string> => (await client.request('POST', '/api/conversations', {})).body.id;

  it('are bounded per conversation and per user (429 TOO_MANY_STREAMS), and a closed stream frees its slot', async () => {
    const [first, second, third] = [await conversation(alice), await conversation(alice), await conversation(alice)];
    const a1 = await stream(alice, first);
    expect(a1.status).toBe(200);
    expect((await stream(alice, first)).status).toBe(200);
    const perConversation = await stream(alice, first);
    expect(perConversation.status).toBe(429);
    expect(perConversation.body.error.code).toBe('TOO_MANY_STREAMS');
    expect(perConversation.body.error.message).toContain('AGENTYARD_EVENT_STREAMS_PER_CONVERSATION');
    expect(perConversation.body.error.details).toEqual({ limit: 2 });

    expect((await stream(alice, second)).status).toBe(200);
    const perUser = await stream(alice, third);
    expect(perUser.status).toBe(429);
    expect(perUser.body.error.code).toBe('TOO_MANY_STREAMS');
    expect(perUser.body.error.message).toContain('AGENTYARD_EVENT_STREAMS_PER_USER');
    // Another user is not held to alice's bound.
    expect((await stream(bob, await conversation(bob))).status).toBe(200);

    // Closing a stream gives its slot back (once the server has seen the connection close).
    a1.controller.abort();
    await expect.poll(async () => {
      const again = await stream(alice, third);
      return again.status;
    }, { timeout: 10_000, interval: 100 }).toBe(200);
    expect((await stream(alice, third)).status).toBe(429);
  });
});
