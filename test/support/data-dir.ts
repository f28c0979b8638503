import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Deletes a test's data directory. A server that was SIGKILLed leaves what it mounted there (workspace disks, warm
 * pool slots), so those are unmounted first, deepest first.
 */
export async function removeDataDir(directory: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const mounted = await mountsUnder(directory);
    if (mounted.length === 0) break;
    for (const target of mounted) await execFileAsync('umount', ['-l', target]).catch(() => undefined);
  }
  await rm(directory, { recursive: true, force: true });
}

/** Mount points at or under a directory, deepest first. */
async function mountsUnder(directory: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((target) => target === directory || target.startsWith(`${directory}/`))
    .sort((a, b) => b.length - a.length);
}
