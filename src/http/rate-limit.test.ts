import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limit.ts';

describe('RateLimiter', () => {
  it('allows the limit per window and key, then refuses until the window is over', () => {
    let now = 1_000_000;
    const limiter = new RateLimiter(60, () => now);
    expect([1, 2, 3].map(() => limiter.hit('a', 3))).toEqual([
      { limit: 3, remaining: 2, resetSeconds: 60, allowed: true },
      { limit: 3, remaining: 1, resetSeconds: 60, allowed: true },
      { limit: 3, remaining: 0, resetSeconds: 60, allowed: true },
    ]);
    now += 15_500;
    expect(limiter.hit('a', 3)).toEqual({ limit: 3, remaining: 0, resetSeconds: 45, allowed: false });
    expect(limiter.hit('b', 3).allowed).toBe(true);
    now += 44_500;
    expect(limiter.hit('a', 3)).toEqual({ limit: 3, remaining: 2, resetSeconds: 60, allowed: true });
  });
});
