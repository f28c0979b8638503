import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestFrom } from '../support/from-address.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

const password = 'correct horse battery';

describe('sign-in throttling', () => {
  let test: TestPlatform;
  // A low account-wide bound keeps the spray short; the per-address bound is the default (5 free failures).
  beforeAll(async () => {
    test = await startTestPlatform({ env: { AGENTYARD_LOGIN_ACCOUNT_FAILURES: '10' } });
    await test.api.register('ada@example.com', password);
  });
  afterAll(() => test?.close());

  const login = (address: string, secret: string, email = 'ada@example.com') =>
    requestFrom(address, test.platform.url, 'POST', '/api/auth/login', { email, password: secret });

  it('throttles one account from one address after 5 failures, while the right password from another address still works', async () => {
    for (let guess = 0; guess < 5; guess++) expect((await login('127.0.0.2', `wrong guess ${guess}`)).status).toBe(401);
    const throttled = await login('127.0.0.2', password);
    expect(throttled.status).toBe(429);
    expect(throttled.body.error).toMatchObject({ code: 'LOGIN_THROTTLED', details: { scope: 'address' } });
    expect(throttled.body.error.message).toMatch(/too many failed sign-ins .*try again in \d+ s/);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // Someone else behind the same address signs in to their own account; the owner signs in from elsewhere.
    await test.api.register('bob@example.com', password);
    expect((await login('127.0.0.2', password, 'bob@example.com')).status).toBe(200);
    expect((await login('127.0.0.3', password)).status).toBe(200);
  });

  it('spaces out the tries on an account sprayed from many addresses, yet lets the owner in from an address they used', async () => {
    // 5 failures so far; 5 more from addresses that each stay under their own bound.
    for (const address of ['127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.4', '127.0.1.5']) {
      expect((await login(address, 'sprayed guess')).status).toBe(401);
    }
    const sprayed = await login('127.0.1.6', 'sprayed guess');
    expect(sprayed.status).toBe(429);
    expect(sprayed.body.error).toMatchObject({ code: 'LOGIN_THROTTLED', details: { scope: 'account' } });
    const retryAfter = Number(sprayed.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // A new address, even with the right password, waits its turn…
    expect((await login('127.0.1.7', password)).status).toBe(429);
    // …but the address the owner signed in from before is let through.
    expect((await login('127.0.0.3', password)).status).toBe(200);
    // Other accounts are not affected.
    expect((await login('127.0.1.8', password, 'bob@example.com')).status).toBe(200);

    // Once the spacing has passed, the right password gets in from a new address too.
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000 + 200));
    expect((await login('127.0.1.7', password)).status).toBe(200);
  });

  it('throttles unknown emails the same way, so throttling does not reveal which accounts exist', async () => {
    const answers: number[] = [];
    for (let guess = 0; guess < 6; guess++) answers.push((await login('127.0.2.1', 'guess', 'nobody@example.com')).status);
    expect(answers).toEqual([401, 401, 401, 401, 401, 429]);
  });
});
