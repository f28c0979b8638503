import { createHash } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { testImage } from '../../src/sandbox/docker/docker-test-support.ts';

/**
 * The deployment the end-to-end suites run against, from the environment, so that one suite file serves every
 * configuration of the CI matrix:
 * - AGENTYARD_TEST_SANDBOX: `local` (bubblewrap, the default) or `docker`;
 * - AGENTYARD_TEST_DOCKER_RUNTIME: `runc` (the default) or `runsc`;
 * - AGENTYARD_TEST_STORE: `sqlite` (the default) or `postgres`, on the server of TEST_DATABASE_URL.
 */
export interface TestConfiguration {
  sandbox: 'local' | 'docker';
  runtime: 'runc' | 'runsc';
  store: 'sqlite' | 'postgres';
  /** Platform settings for this configuration. */
  env: Record<string, string>;
  /** A short name for test titles and logs, e.g. `docker (runsc), postgres`. */
  name: string;
}

export function testConfiguration(source: Record<string, string | undefined> = process.env): TestConfiguration {
  const sandbox = choose(source, 'AGENTYARD_TEST_SANDBOX', ['local', 'docker'] as const);
  const runtime = choose(source, 'AGENTYARD_TEST_DOCKER_RUNTIME', ['runc', 'runsc'] as const);
  const store = choose(source, 'AGENTYARD_TEST_STORE', ['sqlite', 'postgres'] as const);
  if (store === 'postgres' && !source.TEST_DATABASE_URL) throw new Error('AGENTYARD_TEST_STORE=postgres needs TEST_DATABASE_URL (a server where the tests may create databases)');
  const env: Record<string, string> =
    sandbox === 'docker'
      ? { AGENTYARD_SANDBOX: 'docker', AGENTYARD_DOCKER_RUNTIME: runtime, AGENTYARD_SANDBOX_IMAGE: testImage, AGENTYARD_SANDBOX_POOL_SIZE: runtime === 'runc' ? '1' : '0' }
      : {};
  return { sandbox, runtime, store, env, name: `${sandbox === 'docker' ? `docker (${runtime})` : 'local'}, ${store}` };
}

function choose<T extends string>(source: Record<string, string | undefined>, name: string, allowed: readonly T[]): T {
  const value = source[name];
  if (value === undefined || value === '') return allowed[0]!;
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`${name} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}`);
  return value as T;
}

/**
 * The PostgreSQL database of one data directory, created on first use. A platform restarted on the same data
 * directory finds its data again; `removeDataDir` drops it.
 */
export async function testDatabaseFor(dataDir: string, serverUrl = process.env.TEST_DATABASE_URL ?? ''): Promise<string> {
  const name = databaseName(dataDir);
  await adminStatement(serverUrl, async (client) => {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`create database "${name}"`).catch((error: { code?: string }) => {
      if (error.code !== '42P04') throw error; // created meanwhile by another start on this data directory
    });
  });
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops the data directory's database, if the test configuration uses PostgreSQL. */
export async function dropTestDatabaseFor(dataDir: string, source: Record<string, string | undefined> = process.env): Promise<void> {
  if (testConfiguration(source).store !== 'postgres') return;
  await adminStatement(source.TEST_DATABASE_URL ?? '', (client) => client.query(`drop database if exists "${databaseName(dataDir)}" with (force)`).then(() => undefined));
}

function databaseName(dataDir: string): string {
  return `agentyard_t_${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16)}`;
}

async function adminStatement(serverUrl: string, work: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}
