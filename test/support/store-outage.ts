import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { testConfiguration, testDatabaseFor } from './test-configuration.ts';

/** The platform's database made unusable for a while, then given back. */
export interface StoreOutage {
  /** Gives the database back and waits until it is usable again. */
  end(): Promise<void>;
}

/**
 * Takes away the store of a test platform's data directory, on the test configuration's store:
 * - SQLite: another process holds an exclusive transaction on the file, so every write waits out its busy timeout and
 *   fails (WAL readers go on);
 * - PostgreSQL: the database stops accepting connections and the platform's open ones are terminated, as in a restart.
 */
export async function takeStoreAway(dataDir: string): Promise<StoreOutage> {
  if (testConfiguration().store === 'postgres') return takePostgresAway(dataDir);
  return lockSqlite(path.join(dataDir, 'agentyard.sqlite'));
}

async function lockSqlite(file: string): Promise<StoreOutage> {
  // A child process, so that the lock holds while this process is blocked in the platform's own SQLite calls.
  const script = [
    `const Database = require('better-sqlite3');`,
    `const database = new Database(${JSON.stringify(file)}, { timeout: 30000 });`,
    `database.exec('BEGIN EXCLUSIVE');`,
    `process.stdout.write('locked\\n');`,
    `process.stdin.on('end', () => { database.exec('COMMIT'); database.close(); process.exit(0); }).resume();`,
  ].join('\n');
  const holder: ChildProcess = spawn(process.execPath, ['-e', script], { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => holder.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
    void exited.then((code) => reject(new Error(`the SQLite lock holder exited with ${code} before locking`)));
  });
  return {
    async end() {
      holder.stdin!.end();
      const code = await exited;
      if (code !== 0) throw new Error(`the SQLite lock holder exited with ${code}`);
    },
  };
}

async function takePostgresAway(dataDir: string): Promise<StoreOutage> {
  const database = new URL(await testDatabaseFor(dataDir)).pathname.slice(1);
  await onServer(`alter database "${database}" with allow_connections false`);
  await onServer(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${database}' and pid <> pg_backend_pid()`);
  return { end: () => onServer(`alter database "${database}" with allow_connections true`) };
}

async function onServer(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
