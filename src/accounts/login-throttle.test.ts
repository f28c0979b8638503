import { describe, expect, it } from 'vitest';
import { LoginThrottle, defaultLoginThrottleSettings, type LoginVerdict } from './login-throttle.ts';

/** A throttle on a clock the test moves by hand. */
function throttleAt(settings = defaultLoginThrottleSettings) {
  const clock = { now: 1_000_000 };
  const throttle = new LoginThrottle(settings, () => clock.now);
  const advance = (seconds: number): void => {
    clock.now += seconds * 1000;
  };
  return { throttle, advance };
}

/** Fails `count` tries (each admitted one counts as a failure until reported otherwise). */
function fail(throttle: LoginThrottle, account: string, address: string, count = 1): void {
  for (let index = 0; index < count; index++) expect(throttle.admit(account, address).allowed).toBe(true);
}

const refused = (verdict: LoginVerdict) => (verdict.allowed ? null : { retryAfterSeconds: verdict.retryAfterSeconds, scope: verdict.scope });

describe('LoginThrottle', () => {
  it('lets 5 failures per account and address through, then makes that pair wait 1 s, 2 s, 4 s … up to 15 min', () => {
    const { throttle, advance } = throttleAt();
    fail(throttle, 'ada@example.com', '10.0.0.1', 5);
    expect(refused(throttle.admit('ada@example.com', '10.0.0.1'))).toEqual({ retryAfterSeconds: 1, scope: 'address' });

    const waits: number[] = [];
    for (let failure = 0; failure < 14; failure++) {
      const verdict = throttle.admit('ada@example.com', '10.0.0.1');
      if (!verdict.allowed) {
        waits.push(verdict.retryAfterSeconds);
        advance(verdict.retryAfterSeconds);
        expect(throttle.admit('ada@example.com', '10.0.0.1').allowed).toBe(true);
      }
    }
    expect(waits).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]);
  });

  it('keeps other addresses and other accounts apart: the right password from elsewhere still gets in', () => {
    const { throttle } = throttleAt();
    fail(throttle, 'ada@example.com', '10.0.0.1', 5);
    expect(throttle.admit('ada@example.com', '10.0.0.1').allowed).toBe(false);
    // A colleague behind the same address, signing in to their own account.
    expect(throttle.admit('bob@example.com', '10.0.0.1').allowed).toBe(true);
    const owner = throttle.admit('ada@example.com', '192.0.2.7');
    expect(owner.allowed).toBe(true);
  });

  it('counts a burst of parallel tries before their answers: no more than 5 get through', () => {
    const { throttle } = throttleAt();
    const verdicts = Array.from({ length: 50 }, () => throttle.admit('ada@example.com', '10.0.0.1'));
    expect(verdicts.filter((verdict) => verdict.allowed)).toHaveLength(5);
  });

  it('starts a pair over when its password was right', () => {
    const { throttle } = throttleAt();
    fail(throttle, 'ada@example.com', '10.0.0.1', 4);
    const right = throttle.admit('ada@example.com', '10.0.0.1');
    if (!right.allowed) throw new Error('refused');
    throttle.succeeded(right.attempt);
    fail(throttle, 'ada@example.com', '10.0.0.1', 5);
    expect(throttle.admit('ada@example.com', '10.0.0.1').allowed).toBe(false);
  });

  it('spaces out an account sprayed from many addresses: 5 s after 50 failures, doubling up to 60 s', () => {
    const { throttle, advance } = throttleAt();
    // 25 addresses, 2 guesses each: no address reaches its own limit.
    for (let address = 0; address < 25; address++) fail(throttle, 'ada@example.com', `198.51.100.${address}`, 2);
    expect(refused(throttle.admit('ada@example.com', '203.0.113.1'))).toEqual({ retryAfterSeconds: 5, scope: 'account' });

    const spacings: number[] = [];
    for (let guess = 0; guess < 6; guess++) {
      const verdict = throttle.admit('ada@example.com', `203.0.113.${guess + 2}`);
      if (verdict.allowed) throw new Error('a spraying guess got through before the spacing');
      spacings.push(verdict.retryAfterSeconds);
      advance(verdict.retryAfterSeconds);
      fail(throttle, 'ada@example.com', `203.0.113.${guess + 100}`);
    }
    expect(spacings).toEqual([5, 10, 20, 40, 60, 60]);
    // Other accounts are not affected.
    expect(throttle.admit('bob@example.com', '203.0.113.1').allowed).toBe(true);
  });

  it('lets the owner in during a spray: at once from an address they signed in from, and within 60 s from a new one', () => {
    const { throttle, advance } = throttleAt();
    const usual = throttle.admit('ada@example.com', '192.0.2.7');
    if (!usual.allowed) throw new Error('refused');
    throttle.succeeded(usual.attempt);

    for (let address = 0; address < 50; address++) fail(throttle, 'ada@example.com', `198.51.100.${address}`);
    expect(throttle.admit('ada@example.com', '203.0.113.1').allowed).toBe(false);
    const fromUsual = throttle.admit('ada@example.com', '192.0.2.7');
    expect(fromUsual.allowed).toBe(true);

    // From a new address the owner waits at most the account's longest spacing, however long the spray goes on.
    const fresh = refused(throttle.admit('ada@example.com', '203.0.113.50'));
    expect(fresh?.retryAfterSeconds).toBeLessThanOrEqual(60);
    advance(fresh!.retryAfterSeconds);
    expect(throttle.admit('ada@example.com', '203.0.113.50').allowed).toBe(true);
  });

  it('does not count a right password against the account', () => {
    const { throttle } = throttleAt({ ...defaultLoginThrottleSettings, accountFailures: 3 });
    fail(throttle, 'ada@example.com', '198.51.100.1', 2);
    const right = throttle.admit('ada@example.com', '198.51.100.2');
    if (!right.allowed) throw new Error('refused');
    throttle.succeeded(right.attempt);
    expect(throttle.admit('ada@example.com', '198.51.100.3').allowed).toBe(true);
    expect(refused(throttle.admit('ada@example.com', '198.51.100.4'))).toMatchObject({ scope: 'account' });
  });

  it('forgets failures after an hour without one', () => {
    const { throttle, advance } = throttleAt();
    for (let address = 0; address < 10; address++) fail(throttle, 'ada@example.com', `198.51.100.${address}`, 5);
    expect(throttle.admit('ada@example.com', '198.51.100.0').allowed).toBe(false);
    expect(throttle.admit('ada@example.com', '203.0.113.1').allowed).toBe(false);
    advance(61 * 60);
    fail(throttle, 'ada@example.com', '198.51.100.0', 5);
    fail(throttle, 'ada@example.com', '203.0.113.1');
  });

  it('remembers at most maxKeys accounts and pairs', () => {
    const { throttle } = throttleAt({ ...defaultLoginThrottleSettings, maxKeys: 100 });
    for (let index = 0; index < 1000; index++) throttle.admit(`user-${index}@example.com`, `10.0.${index % 250}.${index % 7}`);
    expect(throttle.size).toBeLessThanOrEqual(100);
    // The account tried last is still remembered.
    fail(throttle, 'ada@example.com', '10.9.9.9', 5);
    expect(throttle.admit('ada@example.com', '10.9.9.9').allowed).toBe(false);
  });
});
