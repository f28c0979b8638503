import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit } from './concurrency-limit.ts';

describe('ConcurrencyLimit', () => {
  it('runs at most max tasks at once, the others in the order they came, and survives failures', async () => {
    const limit = new ConcurrencyLimit(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const task = (index: number) => async (): Promise<number> => {
      started.push(index);
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running -= 1;
      if (index === 2) throw new Error('task 2 failed');
      return index;
    };
    const results = await Promise.allSettled([0, 1, 2, 3, 4, 5].map((index) => limit.run(task(index))));
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(results.map((result) => (result.status === 'fulfilled' ? result.value : 'failed'))).toEqual([0, 1, 'failed', 3, 4, 5]);
    // Every slot came back: two more run at once again.
    running = 0;
    most = 0;
    await Promise.all([limit.run(task(6)), limit.run(task(7)), limit.run(task(8))]);
    expect(most).toBe(2);
  });
});
