import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** A PostgreSQL database for one test file, removed by `stop()`. */
export interface TestPostgres {
  /** Connection string of a fresh, empty database. */
  url: string;
  stop(): Promise<void>;
}

/**
 * A fresh database on the server named by TEST_DATABASE_URL, or else on a throwaway cluster
 * started from the Debian postgresql package (initdb + postgres on 127.0.0.1, a free port and
 * a temporary data directory). Never touches the packaged cluster on 5432.
 */
export async function startTestPostgres(
  options: { env?: Record<string, string | undefined> } = {},
): Promise<TestPostgres> {
  const externalUrl = (options.env ?? process.env).TEST_DATABASE_URL;
  if (externalUrl !== undefined && externalUrl !== '') return createTestDatabase(externalUrl);
  return startThrowawayCluster();
}

async function createTestDatabase(serverUrl: string): Promise<TestPostgres> {
  const name = `agentyard_test_${randomBytes(6).toString('hex')}`;
  await runAdminStatement(serverUrl, `create database "${name}"`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    stop: () => runAdminStatement(serverUrl, `drop database if exists "${name}" with (force)`),
  };
}

async function runAdminStatement(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

interface OsUser {
  uid: number;
  gid: number;
}

const startTimeoutMs = 30_000;

async function startThrowawayCluster(): Promise<TestPostgres> {
  const binDir = await findPostgresBinDir();
  // The server refuses to run as root, so as root everything runs as the `postgres` OS user.
  const owner = process.getuid?.() === 0 ? await findOsUser('postgres') : null;
  const baseDir = await mkdtemp(join(tmpdir(), 'agentyard-pg-'));
  if (owner !== null) await chown(baseDir, owner.uid, owner.gid);
  const dataDir = join(baseDir, 'data');
  const removeDir = (): Promise<void> => rm(baseDir, { recursive: true, force: true });

  try {
    await runToCompletion(
      join(binDir, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      { owner, cwd: baseDir },
    );
  } catch (error) {
    await removeDir();
    throw error;
  }

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await findFreePort();
    const server = spawn(
      join(binDir, 'postgres'),
      [
        '-D', dataDir,
        '-p', String(port),
        '-h', '127.0.0.1',
        '-k', baseDir,
        '-c', 'fsync=off',
        '-c', 'synchronous_commit=off',
        '-c', 'full_page_writes=off',
        '-c', 'max_connections=100',
        '-c', 'shared_buffers=32MB',
        '-c', 'log_min_messages=warning',
      ],
      { ...spawnOwnership(owner), cwd: baseDir, env: childEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const log = collectOutput(server);
    const stopServer = async (): Promise<void> => {
      await stopProcess(server);
      process.removeListener('exit', killOnExit);
    };
    const killOnExit = (): void => {
      server.kill('SIGKILL');
    };
    process.once('exit', killOnExit);

    const serverUrl = `postgresql://postgres@127.0.0.1:${port}/postgres`;
    try {
      await waitUntilReady(serverUrl, server, log);
      await runAdminStatement(serverUrl, 'create database agentyard_test');
      return {
        url: `postgresql://postgres@127.0.0.1:${port}/agentyard_test`,
        stop: async () => {
          await stopServer();
          await removeDir();
        },
      };
    } catch (error) {
      lastError = error;
      await stopServer();
      // A port taken between probing and binding is worth another try; anything else is not.
      if (!log().includes('could not bind') && !log().includes('could not create listen socket')) break;
    }
  }
  await removeDir();
  throw lastError;
}

async function findPostgresBinDir(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? await readdir(root) : [];
  const candidates = versions
    .filter((version) => existsSync(join(root, version, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  const newest = candidates[0];
  if (newest === undefined) {
    throw new Error(`no PostgreSQL server found under ${root}: run apt-get install -y postgresql`);
  }
  return join(root, newest, 'bin');
}

async function findOsUser(name: string): Promise<OsUser> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(`OS user ${name} not found: it comes with the postgresql package`);
}

function spawnOwnership(owner: OsUser | null): { uid?: number; gid?: number } {
  return owner === null ? {} : { uid: owner.uid, gid: owner.gid };
}

/** A minimal environment: nothing of the test process (IS_SANDBOX included) leaks into the server. */
function childEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' };
}

function collectOutput(child: ChildProcess): () => string {
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-16_000);
  });
  return () => output;
}

function runToCompletion(
  command: string,
  args: string[],
  options: { owner: OsUser | null; cwd: string },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...spawnOwnership(options.owner),
      cwd: options.cwd,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} failed (${signal ?? `exit ${code}`}):\n${output}`));
    });
  });
}

function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilReady(url: string, server: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`postgres exited during start-up:\n${log()}`);
    }
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`postgres did not accept connections within ${startTimeoutMs} ms:\n${log()}`, {
          cause: error,
        });
      }
    } finally {
      await client.end().catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Immediate shutdown (SIGQUIT): the data is thrown away, so there is nothing to flush. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGQUIT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
