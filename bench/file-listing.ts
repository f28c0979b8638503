/**
 * Benchmark for workspace directory listings: the memory and time of paging through a big directory (what the
 * files route does now) beside reading it whole (what it did before: every entry read, stat'ed and sorted at once).
 *
 *   npm run bench:files -- [--files N] [--clients N] [--limit N]
 *   (or BENCH_FILES, BENCH_CLIENTS, BENCH_LIMIT; defaults 150001 files, 5 clients at once, pages of 2000)
 *
 * Each way runs in a fresh child process, so that its resident memory (peak minus the process's own start) is its
 * own. `clients` listings run at once, as when several browser tabs or scripts list the same directory. The
 * directory is made of empty files in a temporary directory and removed afterwards.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createWorkspaceFiles } from '../src/sandbox/workspace-files.ts';
import { formatBytes, formatMs, table } from './stats.ts';

const print = (line = ''): void => void process.stdout.write(`${line}\n`);
const progress = (line: string): void => void process.stderr.write(`${line}\n`);

type Way = 'paged' | 'whole';

interface Measure {
  way: Way;
  /** Requests made by each client (pages, or 1 for a whole listing). */
  requests: number;
  /** Entries each client got. */
  entries: number;
  ms: number;
  /** Peak resident memory above the process's own after start-up. */
  peakGrowth: number;
}

function statusBytes(field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(match?.[1] ?? Number.NaN) * 1024;
}

/** The listing as the route built it before: the whole directory read, every entry stat'ed at once, then sorted. */
async function wholeListing(directory: string): Promise<number> {
  const entries = await readdir(directory, { withFileTypes: true });
  const listed = await Promise.all(
    entries.map(async (entry) => {
      const stats = await lstat(path.join(directory, entry.name));
      return { name: entry.name, type: stats.isDirectory() ? 'directory' : 'file', size: stats.size, modifiedAt: stats.mtime.toISOString() };
    }),
  );
  listed.sort((a, b) => Number(b.type === 'directory') - Number(a.type === 'directory') || a.name.localeCompare(b.name));
  // The route then serialised it as one JSON answer.
  return JSON.stringify({ path: '', entries: listed }).length > 0 ? listed.length : 0;
}

/** Every page of the directory, one after the other, as a client pages through it now. */
async function pagedListing(directory: string, limit: number): Promise<{ pages: number; entries: number }> {
  const files = createWorkspaceFiles({ root: directory });
  let cursor: string | null = null;
  let pages = 0;
  let entries = 0;
  do {
    const page = await files.list('', { limit, cursor });
    JSON.stringify({ path: '', ...page });
    pages += 1;
    entries += page.entries.length;
    cursor = page.nextCursor;
  } while (cursor !== null);
  return { pages, entries };
}

/** The child: lists the directory `clients` times at once one way, and prints its measure as JSON. */
async function runWay(way: Way, directory: string, clients: number, limit: number): Promise<void> {
  const start = statusBytes('VmRSS');
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: clients }, async () => (way === 'whole' ? { pages: 1, entries: await wholeListing(directory) } : pagedListing(directory, limit))),
  );
  const measure: Measure = {
    way,
    requests: results[0]!.pages,
    entries: results[0]!.entries,
    ms: performance.now() - started,
    peakGrowth: statusBytes('VmHWM') - start,
  };
  process.stdout.write(`${JSON.stringify(measure)}\n`);
}

function measureInChild(way: Way, directory: string, clients: number, limit: number): Promise<Measure> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', way, directory, String(clients), String(limit)], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir() },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(output.trim().split('\n').at(-1)!) as Measure);
      else reject(new Error(`the ${way} listing exited with ${code}`));
    });
  });
}

function readOptions(): { files: number; clients: number; limit: number } {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { files: { type: 'string' }, clients: { type: 'string' }, limit: { type: 'string' } },
  });
  const number = (flag: string | undefined, env: string | undefined, fallback: number): number => {
    const value = Number(flag ?? env ?? fallback);
    if (!Number.isInteger(value) || value < 1) throw new Error(`not a positive integer: ${flag ?? env}`);
    return value;
  };
  return {
    files: number(values.files, process.env.BENCH_FILES, 150_001),
    clients: number(values.clients, process.env.BENCH_CLIENTS, 5),
    limit: number(values.limit, process.env.BENCH_LIMIT, 2000),
  };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const [, , , way, directory, clients, limit] = process.argv;
    return runWay(way as Way, directory!, Number(clients), Number(limit));
  }
  const options = readOptions();
  const directory = await mkdtemp(path.join(tmpdir(), 'agentyard-bench-listing-'));
  try {
    progress(`making ${options.files} empty files in ${directory}`);
    execFileSync('sh', ['-c', `cd "$1" && seq -f 'file-%07g.txt' 1 ${options.files} | xargs touch`, 'sh', directory]);
    const measures: Measure[] = [];
    for (const way of ['paged', 'whole'] as const) {
      progress(`${way}: ${options.clients} client(s) at once`);
      measures.push(await measureInChild(way, directory, options.clients, options.limit));
    }
    print(`Listing a directory of ${options.files} files, ${options.clients} client(s) at once (pages of ${options.limit}):`);
    print();
    print(
      table([
        ['way', 'requests per client', 'entries per client', 'time (all clients)', 'peak RSS growth', 'per client'],
        ...measures.map((measure) => [
          measure.way === 'paged' ? 'paged (now)' : 'whole directory (before)',
          String(measure.requests),
          String(measure.entries),
          formatMs(measure.ms),
          formatBytes(measure.peakGrowth),
          formatBytes(measure.peakGrowth / options.clients),
        ]),
      ]),
    );
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

await main();
