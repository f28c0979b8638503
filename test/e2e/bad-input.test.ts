import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

describe('bad input gets a clear 4xx and the server stays up', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let conversationId: string;

  beforeAll(async () => {
    test = await startTestPlatform({ env: { AGENTYARD_MAX_MESSAGE_BYTES: '10000' } });
    alice = await test.api.registerWithToken('alice@example.com');
    conversationId = (await alice.request('POST', '/api/conversations', {})).body.id;
  });
  afterAll(() => test?.close());

  const cases: [string, (client: ApiClient) => Promise<{ status: number; body: any }>, number, string][] = [
    ['malformed JSON', (c) => c.request('POST', `/api/conversations/${conversationId}/messages`, '{"text": "unterminated'), 400, 'BAD_REQUEST'],
    ['a missing field', (c) => c.request('POST', `/api/conversations/${conversationId}/messages`, {}), 400, 'BAD_REQUEST'],
    ['a field of the wrong type', (c) => c.request('POST', `/api/conversations/${conversationId}/messages`, { text: 42 }), 400, 'BAD_REQUEST'],
    ['an empty message', (c) => c.request('POST', `/api/conversations/${conversationId}/messages`, { text: '   ' }), 400, 'BAD_REQUEST'],
    ['an oversized message', (c) => c.request('POST', `/api/conversations/${conversationId}/messages`, { text: 'x'.repeat(10_001) }), 413, 'PAYLOAD_TOO_LARGE'],
    ['an oversized body', (c) => c.request('POST', `/api/conversations/${conversationId}/messages`, { text: 'x'.repeat(3 * 1024 * 1024) }), 413, 'PAYLOAD_TOO_LARGE'],
    ['a body that is not JSON', (c) => c.request('POST', `/api/conversations/${conversationId}/messages`, 'text=hi', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['an unknown conversation', (c) => c.request('POST', '/api/conversations/conv_nope/messages', { text: 'hi' }), 404, 'NOT_FOUND'],
    ['an unknown agent', (c) => c.request('POST', '/api/conversations', { agentId: 'agt_nope' }), 404, 'NOT_FOUND'],
    ['an unknown route', (c) => c.request('GET', '/api/nothing-here'), 404, 'NOT_FOUND'],
    ['a bad Last-Event-ID', (c) => c.request('GET', `/api/conversations/${conversationId}/events`, undefined, { 'last-event-id': 'abc' }), 400, 'BAD_REQUEST'],
    ['a bad email', (c) => c.request('POST', '/api/auth/register', { email: 'not-an-email', password: 'password123' }), 400, 'BAD_REQUEST'],
    ['a short password', (c) => c.request('POST', '/api/auth/register', { email: 'x@example.com', password: 'short' }), 400, 'BAD_REQUEST'],
    ['an invalid agent', (c) => c.request('POST', '/api/agents', { name: '', model: 'x y', limits: { memoryMb: 1, cpus: 0, turnTimeoutSeconds: 1 } }), 400, 'BAD_REQUEST'],
  ];

  it.each(cases)('%s', async (_name, send, status, code) => {
    const response = await send(alice);
    expect(response.status).toBe(status);
    expect(response.body.error).toMatchObject({ code, message: expect.any(String), requestId: expect.any(String) });
    expect(response.body.error.message.length).toBeGreaterThan(5);
    expect((await test.api.request('GET', '/healthz')).body).toEqual({ status: 'ok' });
  });

  it('names the offending field', async () => {
    const response = await alice.request('POST', `/api/conversations/${conversationId}/messages`, {});
    expect(response.body.error.message).toMatch(/text/);
  });

  it('answers 401 for a missing, malformed, unknown or expired token', async () => {
    expect((await test.api.request('GET', '/api/conversations')).status).toBe(401);
    expect((await test.api.request('GET', '/api/conversations', undefined, { authorization: 'Basic abc' })).status).toBe(401);
    expect((await test.api.withToken('ayt_made_up').request('GET', '/api/conversations')).status).toBe(401);

    // An expired token, made directly in the store (waiting out a real expiry would take a day).
    const session = await test.api.register('expiring@example.com');
    const user = (await session.request('GET', '/api/auth/me')).body.user;
    const { hashSecret } = await import('../../src/accounts/passwords.ts');
    const secret = 'ayt_expired_token_for_the_test_0123456789abcdef';
    await test.platform.store.createApiToken({
      id: 'tok_expired',
      userId: user.id,
      name: 'expired',
      tokenHash: hashSecret(secret),
      prefix: secret.slice(0, 12),
      expiresAt: new Date(Date.now() - 1000).toISOString(),
    });
    const expired = await test.api.withToken(secret).request('GET', '/api/conversations');
    expect(expired.status).toBe(401);
    expect(expired.body.error).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/expired/) });
  });

  it('loses nothing: a refused message leaves the conversation as it was', async () => {
    const before = await alice.request('GET', `/api/conversations/${conversationId}`);
    await alice.request('POST', `/api/conversations/${conversationId}/messages`, { text: 'x'.repeat(20_000) });
    const after = await alice.request('GET', `/api/conversations/${conversationId}`);
    expect(after.body.turns).toEqual(before.body.turns);
    expect(after.body.lastSeq).toBe(before.body.lastSeq);
  });
});
