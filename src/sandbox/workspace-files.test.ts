import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { workspaceFileVersion } from '../core/file-version.ts';
import { createWorkspaceFiles, parseWorkspacePath, type WorkspaceFiles } from './workspace-files.ts';

describe('WorkspaceFiles', () => {
  let base: string;
  let root: string;
  let files: WorkspaceFiles;

  beforeEach(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'agentyard-files-'));
    root = path.join(base, 'workspace');
    await mkdir(root);
    await writeFile(path.join(base, 'outside.txt'), 'host secret');
    files = createWorkspaceFiles({ root, uid: 64000, gid: 64000, maxBytes: 1024 });
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('answers WORKSPACE_FULL on a full disk and keeps the file it would have replaced', async () => {
    const small = createWorkspaceFiles({ root, uid: 64000, gid: 64000, maxBytes: 1024 * 1024 });
    // A 256 KiB file system as the workspace.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', root]);
    try {
      await small.write('keep.sh', '#!/bin/sh\necho old\n');
      await chmod(path.join(root, 'keep.sh'), 0o755);
      await expect(small.write('keep.sh', Buffer.alloc(512 * 1024))).rejects.toMatchObject({ code: 'WORKSPACE_FULL', message: expect.stringContaining('keep.sh') });
      expect(await readFile(path.join(root, 'keep.sh'), 'utf8')).toBe('#!/bin/sh\necho old\n');
      expect(await readdir(root)).toEqual(['keep.sh']);
      // A replacement that fits keeps the file's mode.
      await small.write('keep.sh', '#!/bin/sh\necho new\n');
      expect(await readFile(path.join(root, 'keep.sh'), 'utf8')).toBe('#!/bin/sh\necho new\n');
      expect((await stat(path.join(root, 'keep.sh'))).mode & 0o777).toBe(0o755);
    } finally {
      execFileSync('umount', [root]);
    }
  });

  it('parses relative paths and rejects absolute ones, .., NUL bytes and over-long names', () => {
    expect(parseWorkspacePath('./a//b/c.txt')).toEqual(['a', 'b', 'c.txt']);
    for (const bad of ['', '.', '/etc/passwd', '../x', 'a/../b', 'a\0b', `${'n'.repeat(256)}`, `${'d/'.repeat(2100)}x`]) {
      expect(() => parseWorkspacePath(bad), JSON.stringify(bad.slice(0, 20))).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
    }
  });

  it('writes files and their new parent directories owned by the sandbox user', async () => {
    await files.write('a/b/c.txt', 'hello');
    expect(await readFile(path.join(root, 'a/b/c.txt'), 'utf8')).toBe('hello');
    for (const created of ['a', 'a/b', 'a/b/c.txt']) {
      const stats = await stat(path.join(root, created));
      expect([stats.uid, stats.gid], created).toEqual([64000, 64000]);
    }
    await files.write('a/b/c.txt', 'hi');
    expect((await files.read('a/b/c.txt')).toString()).toBe('hi');
  });

  it('follows symlinks that stay inside the workspace', async () => {
    await mkdir(path.join(root, 'real'));
    await writeFile(path.join(root, 'real/file.txt'), 'inside');
    await symlink('real', path.join(root, 'alias'));
    await symlink('real/file.txt', path.join(root, 'file-link'));
    expect((await files.read('alias/file.txt')).toString()).toBe('inside');
    expect((await files.read('file-link')).toString()).toBe('inside');
    await files.write('alias/new.txt', 'through a directory link');
    expect(await readFile(path.join(root, 'real/new.txt'), 'utf8')).toBe('through a directory link');
  });

  it('refuses symlinks that lead outside, and never writes through a final symlink', async () => {
    await symlink(path.join(base, 'outside.txt'), path.join(root, 'absolute'));
    await symlink('../outside.txt', path.join(root, 'relative'));
    await symlink(base, path.join(root, 'up'));
    await symlink('real.txt', path.join(root, 'dangling'));
    for (const escape of ['absolute', 'relative', 'up/outside.txt']) {
      await expect(files.read(escape), escape).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    }
    for (const escape of ['absolute', 'relative', 'up/outside.txt', 'up/planted.txt', 'dangling']) {
      await expect(files.write(escape, 'pwned'), escape).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    }
    expect(await readFile(path.join(base, 'outside.txt'), 'utf8')).toBe('host secret');
    expect(await stat(path.join(base, 'planted.txt')).catch(() => null)).toBeNull();
    expect(await stat(path.join(root, 'real.txt')).catch(() => null)).toBeNull();
  });

  it('refuses FIFOs and directories without blocking', async () => {
    execFileSync('mkfifo', [path.join(root, 'pipe')]);
    await mkdir(path.join(root, 'dir'));
    await expect(files.read('pipe')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(files.write('pipe', 'x')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(files.read('dir')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(files.write('dir', 'x')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('answers NOT_FOUND for missing files and PAYLOAD_TOO_LARGE beyond the size limit', async () => {
    await expect(files.read('missing.txt')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(files.write('big.bin', Buffer.alloc(1025))).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    await writeFile(path.join(root, 'big.bin'), Buffer.alloc(1025));
    await expect(files.read('big.bin')).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('lists a directory in pages, directories first, every name exactly once, though it changes between pages', async () => {
    const names = ['b.txt', 'A.txt', 'a.txt', 'Zeta', 'ünï.txt', 'x-10', 'x-9', '.hidden', 'dir-b', 'Dir-a'];
    for (const name of names) {
      if (name.toLowerCase().startsWith('dir')) await mkdir(path.join(root, name));
      else await writeFile(path.join(root, name), name);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await files.list('', { limit: 3, cursor });
      expect(page.entries.length).toBeLessThanOrEqual(3);
      seen.push(...page.entries.map((entry) => entry.name));
      cursor = page.nextCursor;
      pages += 1;
      if (pages === 2) {
        // Between pages: one entry already listed goes, one before the cursor and one after it come.
        await unlink(path.join(root, 'A.txt'));
        await writeFile(path.join(root, '0-early.txt'), '');
        await writeFile(path.join(root, 'zz-late.txt'), '');
      }
    } while (cursor !== null && pages < 20);
    expect(seen).toEqual(['Dir-a', 'dir-b', '.hidden', 'A.txt', 'a.txt', 'b.txt', 'x-10', 'x-9', 'Zeta', 'zz-late.txt', 'ünï.txt']);
    const whole = await files.list('', { limit: 100 });
    expect(whole.nextCursor).toBeNull();
    expect(whole.entries.find((entry) => entry.name === 'b.txt')).toMatchObject({ type: 'file', size: 5 });
    expect(whole.entries.find((entry) => entry.name === 'dir-b')).toMatchObject({ type: 'directory', size: 0 });
    for (const bad of ['x', 'q:name', 'f:a/b', 'f:']) {
      await expect(files.list('', { cursor: bad }), bad).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    }
    await expect(files.list('', { limit: 0 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(files.list('missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('never returns more than the size limit, nor fails otherwise, while a file swings between 10 B and 3 GiB', async () => {
    await writeFile(path.join(root, 'swing.bin'), Buffer.alloc(10, 0x61));
    // Sparse: the size is real to stat and read, but costs no disk.
    const swinger = spawn('perl', ['-e', 'while (1) { truncate("swing.bin", 10); truncate("swing.bin", 3 << 30) }'], { cwd: root, stdio: 'ignore' });
    try {
      const outcomes = new Set<string>();
      for (let attempt = 0; attempt < 200; attempt++) {
        const outcome = await files.read('swing.bin').then(
          (bytes) => `read ${bytes.length}`,
          (error: { code?: string }) => String(error.code ?? error),
        );
        outcomes.add(outcome);
      }
      // A read may see any size up to the limit (the file is cut to 10 B, then grows), or refuse with 413.
      for (const outcome of outcomes) expect(outcome).toMatch(/^(read (\d+)|PAYLOAD_TOO_LARGE)$/);
      for (const outcome of outcomes) if (outcome.startsWith('read')) expect(Number(outcome.slice(5))).toBeLessThanOrEqual(1024);
      expect(outcomes).toContain('PAYLOAD_TOO_LARGE');
    } finally {
      swinger.kill('SIGKILL');
    }
  });

  it('writes with If-Match only over the version read, and says FILE_CHANGED otherwise', async () => {
    await files.write('notes.txt', 'first');
    const read = await files.read('notes.txt');
    await files.write('notes.txt', 'mine', { ifMatch: [workspaceFileVersion(read)] });
    expect(await readFile(path.join(root, 'notes.txt'), 'utf8')).toBe('mine');
    // The agent writes meanwhile: the old version no longer matches, and nothing is written.
    await writeFile(path.join(root, 'notes.txt'), 'agent');
    await expect(files.write('notes.txt', 'stale', { ifMatch: [workspaceFileVersion(read)] })).rejects.toMatchObject({ code: 'FILE_CHANGED' });
    expect(await readFile(path.join(root, 'notes.txt'), 'utf8')).toBe('agent');
    await expect(files.write('gone.txt', 'x', { ifMatch: [workspaceFileVersion(read)] })).rejects.toMatchObject({ code: 'FILE_CHANGED' });
    await expect(files.write('gone.txt', 'x', { ifMatch: '*' })).rejects.toMatchObject({ code: 'FILE_CHANGED' });
    expect(await stat(path.join(root, 'gone.txt')).catch(() => null)).toBeNull();
    await files.write('notes.txt', 'any', { ifMatch: '*' });
    expect(await readFile(path.join(root, 'notes.txt'), 'utf8')).toBe('any');
    expect((await readdir(root)).sort()).toEqual(['notes.txt']);
  });
});
