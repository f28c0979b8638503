import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.ts';
import { createSqliteStore } from '../store/sqlite/index.ts';
import { RateLimiter, StoreRateLimiter, type RateLimitCounter } from './rate-limit.ts';

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

describe('StoreRateLimiter', () => {
  it('answers as the in-memory limiter does, counting in the store, and deletes finished windows once per window', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'rate-limit-'));
    const store = createSqliteStore({ path: join(directory, 'store.db') });
    try {
      await store.migrate();
      let now = 1_000_000;
      const shared = new StoreRateLimiter(store, 60, () => now);
      // A second limiter on the same store, as another replica: it sees the first one's requests.
      const other = new StoreRateLimiter(store, 60, () => now);
      const memory = new RateLimiter(60, () => now);
      const steps: Array<[number, RateLimitCounter, string]> = [
        [0, shared, 'a'],
        [1000, other, 'a'],
        [0, shared, 'a'],
        [14_500, other, 'a'],
        [0, shared, 'b'],
        [44_500, other, 'a'],
      ];
      for (const [advance, counter, key] of steps) {
        now += advance;
        expect(await counter.hit(key, 3)).toEqual(memory.hit(key, 3));
      }
      // A window later, the next request's sweep deletes `b`'s finished window; `a`'s, started again at 60 s, stays.
      const keys = (): string[] => {
        const database = new Database(join(directory, 'store.db'), { readonly: true });
        try {
          return database.prepare('select key from rate_limit_windows order by key').pluck().all() as string[];
        } finally {
          database.close();
        }
      };
      expect(keys()).toEqual(['a', 'b']);
      now += 60_000;
      await shared.hit('c', 3);
      await expect.poll(keys).toEqual(['a', 'c']);
    } finally {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('counts in memory while the store is unavailable, and fails on any other store error', async () => {
    let failure: AppError = new AppError('STORE_UNAVAILABLE', 'the database is unavailable right now; try again shortly');
    const unavailable = {
      hitRateLimit: () => Promise.reject(failure),
      deleteRateLimitWindows: () => Promise.reject(failure),
    };
    const limiter = new StoreRateLimiter(unavailable, 60, () => 1_000_000);
    expect((await limiter.hit('a', 2)).allowed).toBe(true);
    expect((await limiter.hit('a', 2)).allowed).toBe(true);
    expect(await limiter.hit('a', 2)).toMatchObject({ allowed: false, remaining: 0 });
    failure = new AppError('INTERNAL', 'postgres store: hitRateLimit failed');
    await expect(limiter.hit('a', 2)).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});
