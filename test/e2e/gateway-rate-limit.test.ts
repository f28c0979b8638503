import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

describe('rate limits at the API edge', () => {
  let test: TestPlatform;

  beforeAll(async () => {
    test = await startTestPlatform({
      env: {
        AGENTYARD_RATE_LIMIT_PER_TOKEN: '3',
        AGENTYARD_RATE_LIMIT_PER_USER: '5',
        AGENTYARD_RATE_LIMIT_ANONYMOUS: '4',
        AGENTYARD_RATE_LIMIT_WINDOW_SECONDS: '60',
      },
    });
  });
  afterAll(() => test?.close());

  const limits = (response: { headers: Headers }) => ({
    limit: response.headers.get('ratelimit-limit'),
    remaining: response.headers.get('ratelimit-remaining'),
    policy: response.headers.get('ratelimit-policy'),
  });

  it('limits each token, then the user across tokens, answering 429 RATE_LIMITED with Retry-After', async () => {
    // Anonymous request 1 (counted per address), then the user's requests 1 and 2 with the session cookie.
    const session = await test.api.register('alice@example.com');
    const first = new ApiClient(test.api.baseUrl, { token: (await session.request('POST', '/api/tokens', { name: 'a' })).body.token });
    const second = new ApiClient(test.api.baseUrl, { token: (await session.request('POST', '/api/tokens', { name: 'b' })).body.token });

    const answers = [];
    for (let index = 0; index < 4; index++) answers.push(await first.request('GET', '/api/agents'));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429]);
    // The tightest limit is shown: here the token's (the user has had two requests more, but allows five).
    expect(answers.slice(0, 3).map(limits)).toEqual([
      { limit: '3', remaining: '2', policy: '3;w=60' },
      { limit: '3', remaining: '1', policy: '3;w=60' },
      { limit: '3', remaining: '0', policy: '3;w=60' },
    ]);
    const refused = answers[3]!;
    expect(refused.body.error).toMatchObject({ code: 'RATE_LIMITED' });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');

    // Another token of the same user is held by the user's limit.
    const other = await second.request('GET', '/api/agents');
    expect(other.status).toBe(429);
    expect(limits(other)).toMatchObject({ limit: '5', remaining: '0' });
    expect(other.headers.get('retry-after')).not.toBeNull();

    // Another user is not affected; health probes are never limited.
    const bob = await test.api.registerWithToken('bob@example.com');
    expect((await bob.request('GET', '/api/agents')).status).toBe(200);
    for (let index = 0; index < 10; index++) expect((await test.api.request('GET', '/healthz')).status).toBe(200);
  });

  it('limits requests without credentials per client address', async () => {
    // This file has already made two anonymous requests (the registrations) from this address.
    const statuses = [];
    for (let index = 0; index < 3; index++) statuses.push((await test.api.request('POST', '/api/auth/login', { email: 'x@example.com', password: 'wrong password' })).status);
    expect(statuses).toEqual([401, 401, 429]);
  });
});
