import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConnectionBudget, raiseOpenFileLimit, readOpenFileLimit, reservedDescriptors, sandboxConnectionBudget } from './descriptor-budget.ts';

const limits = (soft: string, hard: string): string =>
  [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max processes             63704                63704                processes ',
    `Max open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     `,
    'Max locked memory         8388608              8388608              bytes     ',
  ].join('\n');

describe('readOpenFileLimit', () => {
  it('reads the soft and hard RLIMIT_NOFILE from /proc/<pid>/limits', () => {
    expect(readOpenFileLimit(limits('1024', '524288'))).toEqual({ soft: 1024, hard: 524288 });
    expect(readOpenFileLimit('Max processes 1 1 processes')).toBeNull();
  });

  it('reads this process’s own limit', () => {
    const own = readOpenFileLimit();
    expect(own).not.toBeNull();
    expect(own!.soft).toBeGreaterThan(0);
    expect(own!.soft).toBeLessThanOrEqual(own!.hard);
  });
});

describe('raiseOpenFileLimit', () => {
  it('raises the soft limit of this running process to its hard limit', async () => {
    const { hard } = readOpenFileLimit()!;
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=1024:${hard}`]);
    expect(readOpenFileLimit()).toEqual({ soft: 1024, hard });
    expect(await raiseOpenFileLimit()).toEqual({ limit: { soft: hard, hard }, raised: true, error: null });
    expect(await raiseOpenFileLimit()).toEqual({ limit: { soft: hard, hard }, raised: false, error: null });
  });
});

describe('sandboxConnectionBudget', () => {
  it('keeps the reserve and gives sandboxes half of the rest', () => {
    expect(sandboxConnectionBudget(1_048_576)).toBe((1_048_576 - reservedDescriptors) / 2);
    expect(sandboxConnectionBudget(20_000)).toBe(7_952);
  });

  it('keeps half of a small limit for the server instead of the whole reserve', () => {
    expect(sandboxConnectionBudget(1024)).toBe(256);
    expect(sandboxConnectionBudget(1)).toBe(0);
  });
});

describe('ConnectionBudget', () => {
  it('refuses a sandbox past its own cap while others still get places', () => {
    const budget = new ConnectionBudget({ perSandbox: 2, total: 10 });
    const places = [budget.take('a'), budget.take('a')];
    expect(places.every((place) => 'release' in place)).toBe(true);
    expect(budget.take('a')).toEqual({ refused: 'sandbox-limit' });
    expect('release' in budget.take('b')).toBe(true);
    expect([budget.held('a'), budget.held('b'), budget.held()]).toEqual([2, 1, 3]);
  });

  it('refuses every sandbox once all of them together hold the total', () => {
    const budget = new ConnectionBudget({ perSandbox: 5, total: 3 });
    for (const sandboxId of ['a', 'a', 'b']) expect('release' in budget.take(sandboxId)).toBe(true);
    expect(budget.take('c')).toEqual({ refused: 'server-limit' });
    expect(budget.take('a')).toEqual({ refused: 'server-limit' });
  });

  it('gives a place back once, however often it is released', () => {
    const budget = new ConnectionBudget({ perSandbox: 1, total: 1 });
    const place = budget.take('a');
    if (!('release' in place)) throw new Error('expected a place');
    place.release();
    place.release();
    expect(budget.held()).toBe(0);
    const again = budget.take('a');
    expect('release' in again).toBe(true);
    expect(budget.take('b')).toEqual({ refused: 'server-limit' });
    expect([budget.held('a'), budget.held()]).toEqual([1, 1]);
  });
});
