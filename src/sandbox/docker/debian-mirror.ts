import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The Debian archive this host's apt already uses, so that an offline image build fetches from the same place
 * (deb822 `.sources` files and one-line `sources.list` entries). Security and backports archives are skipped.
 */
export async function hostDebianMirror(aptDir = '/etc/apt'): Promise<string | null> {
  const candidates: string[] = [];
  const sourcesDir = path.join(aptDir, 'sources.list.d');
  const files = await readdir(sourcesDir).catch(() => [] as string[]);
  for (const file of files.filter((name) => name.endsWith('.sources')).sort()) {
    const text = await readFile(path.join(sourcesDir, file), 'utf8').catch(() => '');
    for (const stanza of text.split(/\n\s*\n/)) {
      const field = (name: string): string[] => new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      if (!field('Types').includes('deb')) continue;
      const suites = field('Suites');
      if (suites.some((suite) => !/-(security|backports)$/.test(suite) && !suite.includes('/'))) candidates.push(...field('URIs'));
    }
  }
  const lists = [path.join(aptDir, 'sources.list'), ...files.filter((name) => name.endsWith('.list')).map((name) => path.join(sourcesDir, name))];
  for (const file of lists) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
      if (match && !/-(security|backports)$/.test(match[2]!)) candidates.push(match[1]!);
    }
  }
  return candidates.find((uri) => /^https?:\/\//.test(uri) && !/security/.test(uri))?.replace(/\/+$/, '') ?? null;
}
