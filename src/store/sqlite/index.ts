import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SqliteDialect } from 'kysely';
import { silentLogger, type Logger } from '../../core/logger.ts';
import type { Store } from '../../core/store.ts';
import { SqlStore, type ConstraintViolation } from '../sql-store.ts';

export interface SqliteStoreConfig {
  /** The database file, created with its folder if missing; `:memory:` for a private in-memory database. */
  path: string;
  /** How long a write waits for another process's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/** A Store on a SQLite file (better-sqlite3, WAL). Nothing is opened until first use. */
export function createSqliteStore(config: SqliteStoreConfig, logger: Logger = silentLogger): Store {
  const busyTimeoutMs = config.busyTimeoutMs ?? 5000;
  const dialect = new SqliteDialect({
    database: async () => {
      const { default: Database } = await import('better-sqlite3');
      if (config.path !== ':memory:' && config.path !== '') {
        await mkdir(dirname(config.path), { recursive: true });
      }
      const database = new Database(config.path, { timeout: busyTimeoutMs });
      database.pragma('journal_mode = WAL');
      // WAL makes NORMAL durable against application crashes; only an OS crash can lose the last commits.
      database.pragma('synchronous = NORMAL');
      database.pragma('foreign_keys = ON');
      database.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
      return database;
    },
  });
  return new SqlStore({ kind: 'sqlite', dialect, classifyError: classifySqliteError, logger });
}

/** better-sqlite3 reports extended result codes, e.g. SQLITE_CONSTRAINT_UNIQUE. */
export function classifySqliteError(error: unknown): ConstraintViolation | null {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'SQLITE_CONSTRAINT_UNIQUE':
    case 'SQLITE_CONSTRAINT_PRIMARYKEY':
      return 'unique';
    case 'SQLITE_CONSTRAINT_FOREIGNKEY':
      return 'foreign_key';
    default:
      // Locked by another connection past the busy timeout, or the file cannot be opened or written right now.
      return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|READONLY|CANTOPEN|IOERR)/.test(code) ? 'unavailable' : null;
  }
}
