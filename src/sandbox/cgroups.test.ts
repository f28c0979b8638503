import { access } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { cgroupV2Required, skipWithoutCgroups } from '../../test/support/limit-guards.ts';
import { oomCountFileOf, readOomKillCount } from './cgroups.ts';

describe('OOM kill counts of a process’s memory cgroup', () => {
  it('finds the count file of this process’s memory cgroup and reads it', async (context) => {
    const file = await oomCountFileOf(process.pid);
    skipWithoutCgroups(context, file === null, 'this host shows no memory cgroup for this process');
    await access(file!);
    expect(file).toMatch(cgroupV2Required ? /memory\.events$/ : /memory\.(oom_control|events)$/);
    expect(await readOomKillCount(file!)).toBeGreaterThanOrEqual(0);
  });

  it('answers null for a process that does not exist and a file that is gone', async () => {
    expect(await oomCountFileOf(2 ** 22 + 1)).toBeNull();
    expect(await readOomKillCount('/sys/fs/cgroup/memory/agentyard-no-such-cgroup/memory.oom_control')).toBeNull();
  });
});
