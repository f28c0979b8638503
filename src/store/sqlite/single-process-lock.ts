import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

/** An exclusive hold on a lock file for as long as this process lives. */
export interface SingleProcessLock {
  /** The lock file. */
  readonly path: string;
  /** Lets another process take the lock. Idempotent. */
  release(): void;
}

/** Another process holds the lock. */
export class LockHeldError extends Error {
  override readonly name = 'LockHeldError';
  constructor(readonly path: string) {
    super(`${path} is locked by another process`);
  }
}

/** A second server on a SQLite database this process already serves. */
export class DatabaseInUseError extends Error {
  override readonly name = 'DatabaseInUseError';
  constructor(readonly databasePath: string) {
    super(
      `another Agentyard server is already using the data directory ${dirname(databasePath)} (its SQLite database ${databasePath}). ` +
        'SQLite serves one server process at a time: stop the other server first, or, to run several replicas, ' +
        'use PostgreSQL (set DATABASE_URL or --database-url).',
    );
  }
}

/**
 * Takes an exclusive lock on `lockPath` (created if missing), or fails at once with LockHeldError.
 *
 * The lock is SQLite's own: a connection in exclusive locking mode with an open `BEGIN EXCLUSIVE` holds POSIX
 * record locks on the file, which the kernel drops when the process ends, however it ends. A SIGKILLed server
 * therefore never leaves a stale lock behind, unlike a pid file (whose pid may be reused by then).
 */
export async function acquireSingleProcessLock(lockPath: string): Promise<SingleProcessLock> {
  await mkdir(dirname(lockPath), { recursive: true });
  // Loaded on use, like the SQLite store, so a PostgreSQL installation never loads the native module.
  const { default: Database } = await import('better-sqlite3');
  // No busy timeout: a lock held by a live process stays held, so waiting would only delay the answer.
  const database = new Database(lockPath, { timeout: 0 });
  try {
    database.pragma('locking_mode = EXCLUSIVE');
    // Nothing is ever written, so no journal file is needed beside the lock file.
    database.pragma('journal_mode = MEMORY');
    // Left open for the life of the lock: the file lock goes with the transaction (and, in exclusive mode, stays after it).
    database.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    database.close();
    if ((error as { code?: unknown }).code === 'SQLITE_BUSY') throw new LockHeldError(lockPath);
    throw new Error(`could not lock ${lockPath}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return {
    path: lockPath,
    release() {
      // The file stays: deleting it would let a late opener lock the old file while a newcomer locks a new one.
      if (database.open) database.close();
    },
  };
}

/**
 * Keeps a second server process off a SQLite database: takes the lock file beside it (`<database>.lock`), or throws
 * DatabaseInUseError naming the data directory and the way to several replicas (PostgreSQL). Only the serving
 * process takes it; short-lived commands (create-user, doctor) may run beside a server.
 */
export async function lockSqliteDatabase(databasePath: string): Promise<SingleProcessLock> {
  // A private in-memory database cannot be shared with another process anyway.
  if (databasePath === ':memory:' || databasePath === '') return { path: '', release() {} };
  try {
    return await acquireSingleProcessLock(`${databasePath}.lock`);
  } catch (error) {
    if (error instanceof LockHeldError) throw new DatabaseInUseError(databasePath);
    throw error;
  }
}
