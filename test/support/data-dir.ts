import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { mountsUnder } from '../../src/sandbox/mount-table.ts';
import { dropTestDatabaseFor } from './test-configuration.ts';

const execFileAsync = promisify(execFile);

/**
 * Deletes a test's data directory. A server that was SIGKILLed leaves what it mounted there (workspace disks, warm
 * pool slots), so those are unmounted first, deepest first. The directory's PostgreSQL database, if the test
 * configuration uses one, goes with it.
 */
export async function removeDataDir(directory: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const mounted = await mountsUnder(directory);
    if (mounted.length === 0) break;
    for (const target of mounted) await execFileAsync('umount', ['-l', target]).catch(() => undefined);
  }
  await rm(directory, { recursive: true, force: true });
  await dropTestDatabaseFor(directory);
}
