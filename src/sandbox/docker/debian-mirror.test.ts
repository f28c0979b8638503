import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostDebianMirror } from './debian-mirror.ts';

async function aptDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'apt-'));
  await mkdir(path.join(dir, 'sources.list.d'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

describe('hostDebianMirror', () => {
  it('reads the main archive from deb822 sources, skipping security and backports', async () => {
    const dir = await aptDir({
      'sources.list.d/backports.list': 'deb http://backports.mirror.test/debian bookworm-backports main\n',
      'sources.list.d/debian.sources':
        'Types: deb\nURIs: http://security.mirror.test/debian-security\nSuites: bookworm-security\n\n' +
        'Types: deb\nURIs: http://archive.mirror.test/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n',
    });
    expect(await hostDebianMirror(dir)).toBe('http://archive.mirror.test/debian');
  });

  it('reads a one-line sources.list', async () => {
    const dir = await aptDir({ 'sources.list': '# comment\ndeb [arch=amd64] https://list.mirror.test/debian bookworm main\n' });
    expect(await hostDebianMirror(dir)).toBe('https://list.mirror.test/debian');
  });

  it('answers null when apt names no archive', async () => {
    expect(await hostDebianMirror(await aptDir({}))).toBeNull();
  });
});
