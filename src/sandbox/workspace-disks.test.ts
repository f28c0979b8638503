import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDataDir } from '../../test/support/data-dir.ts';
import { createWorkspaceDisks, type WorkspaceDisks } from './workspace-disks.ts';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('WorkspaceDisks', () => {
  let dataDir: string;
  const opened: WorkspaceDisks[] = [];
  const open = (sizeMb: number): WorkspaceDisks => {
    const disks = createWorkspaceDisks({ dataDir, sizeMb });
    opened.push(disks);
    return disks;
  };
  const spares = async (): Promise<string[]> => (await readdir(path.join(dataDir, 'disks'))).filter((name) => name.startsWith('.spare-')).sort();
  const inode = async (file: string): Promise<number> => (await stat(file)).ino;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-disks-'));
  });
  afterEach(async () => {
    for (const disks of opened.splice(0)) await disks.close();
    await removeDataDir(dataDir);
  });

  it('mounts a workspace disk of the configured size, with nothing in it, and reports its room', async () => {
    const disks = open(64);
    await disks.ensure('w1');
    const mountPoint = path.join(dataDir, 'workspaces', 'w1');
    expect(await readdir(mountPoint)).toEqual([]);
    const usage = await disks.usage('w1');
    expect(usage?.sizeBytes).toBe(64 * 1024 * 1024);
    expect(usage!.freeBytes).toBeGreaterThan(40 * 1024 * 1024);
    expect(await disks.usage('never-mounted')).toBeNull();
  });

  it('keeps formatted spare images ready, hands one to the next new workspace, and a later run adopts them', async () => {
    const first = open(64);
    await first.ensure('w1');
    await expect.poll(spares, { timeout: 10_000 }).toHaveLength(2);
    await first.close();

    // Spares of another size are of no use, nor one a crashed run was still making: both are deleted.
    await writeFile(path.join(dataDir, 'disks', '.spare-32m-0123456789ab.ext4'), '');
    await writeFile(path.join(dataDir, 'disks', '.making-64m-0123456789ab.ext4'), '');
    const second = open(64);
    expect(await second.unsupported()).toBeNull();
    expect(await spares()).toHaveLength(2);
    expect((await readdir(path.join(dataDir, 'disks'))).filter((name) => name.startsWith('.making-'))).toEqual([]);
    const before = await Promise.all((await spares()).map((name) => inode(path.join(dataDir, 'disks', name))));
    await second.ensure('w2');
    // The new workspace's image is one of the spares, renamed.
    expect(before).toContain(await inode(path.join(dataDir, 'disks', 'w2.ext4')));
    await expect.poll(spares, { timeout: 10_000 }).toHaveLength(2);
    expect((await second.usage('w2'))?.sizeBytes).toBe(64 * 1024 * 1024);
  });
});
