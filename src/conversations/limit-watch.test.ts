import { describe, expect, it } from 'vitest';
import { isDiskFull, LimitWatch } from './limit-watch.ts';

const mib = 1024 * 1024;

describe('LimitWatch', () => {
  it('tells each new OOM kill once, naming the memory limit', () => {
    const watch = new LimitWatch(512);
    expect(watch.observe({ oomKills: 0, disk: null })).toEqual([]);
    const first = watch.observe({ oomKills: 1, disk: null });
    expect(first).toEqual([{ code: 'SANDBOX_OUT_OF_MEMORY', message: expect.stringContaining('memory limit of 512 MiB') }]);
    expect(first[0]!.message).toMatch(/^a process .* was killed/);
    expect(watch.observe({ oomKills: 1, disk: null })).toEqual([]);
    expect(watch.observe({ oomKills: 3, disk: null })[0]!.message).toMatch(/^2 processes .* were killed/);
  });

  it('tells a full workspace once per time it fills up', () => {
    const watch = new LimitWatch(512);
    const disk = (freeMb: number) => ({ oomKills: 0, disk: { sizeBytes: 256 * mib, freeBytes: freeMb * mib } });
    expect(watch.observe(disk(100))).toEqual([]);
    expect(watch.observe(disk(0.5))).toEqual([{ code: 'WORKSPACE_FULL', message: expect.stringContaining('limit is 256 MiB') }]);
    expect(watch.observe(disk(0.2))).toEqual([]);
    expect(watch.observe(disk(50))).toEqual([]);
    expect(watch.observe(disk(0))).toHaveLength(1);
  });

  it('counts a disk as full below 1 MiB, or 0.5 % of a large one', () => {
    expect(isDiskFull({ sizeBytes: 64 * mib, freeBytes: 2 * mib })).toBe(false);
    expect(isDiskFull({ sizeBytes: 64 * mib, freeBytes: mib - 1 })).toBe(true);
    expect(isDiskFull({ sizeBytes: 10_240 * mib, freeBytes: 40 * mib })).toBe(true);
    expect(isDiskFull({ sizeBytes: 10_240 * mib, freeBytes: 60 * mib })).toBe(false);
  });
});
