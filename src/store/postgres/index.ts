import { PostgresDialect } from 'kysely';
import { silentLogger, type Logger } from '../../core/logger.ts';
import type { Store } from '../../core/store.ts';
import { SqlStore, type ConstraintViolation } from '../sql-store.ts';
import { PostgresNotifications } from './notification-listener.ts';

export interface PostgresStoreConfig {
  /** A connection string, e.g. `postgresql://user:password@host:5432/agentyard`. */
  url: string;
  /** Most connections the pool opens. Default 10. */
  poolSize?: number;
}

/** A Store on PostgreSQL (pg Pool). No connection is made until first use. */
export function createPostgresStore(config: PostgresStoreConfig, logger: Logger = silentLogger): Store {
  const dialect = new PostgresDialect({
    pool: async () => {
      const { default: pg } = await import('pg');
      const pool = new pg.Pool({ connectionString: config.url, max: config.poolSize ?? 10 });
      // Without a listener, an idle connection dropped by the server would crash the process.
      pool.on('error', (error) => {
        logger.error({ backend: 'postgres', error: { message: error.message } }, 'idle connection failed');
      });
      return pool;
    },
  });
  return new SqlStore({
    kind: 'postgres',
    dialect,
    classifyError: classifyPostgresError,
    logger,
    notifications: (db) => new PostgresNotifications({ url: config.url, db, logger }),
  });
}

/**
 * PostgreSQL reports SQLSTATE codes: 23505 unique_violation, 23503 foreign_key_violation. The server is unavailable on
 * a connection exception (class 08), a shutdown or restart (57P01-57P03), too many connections (53300), a database not
 * accepting connections (55000 at connect), and when the connection fails below SQL (refused, reset, ended).
 */
export function classifyPostgresError(error: unknown): ConstraintViolation | null {
  const code = (error as { code?: unknown } | null)?.code;
  const message = (error as { message?: unknown } | null)?.message;
  switch (code) {
    case '23505':
      return 'unique';
    case '23503':
      return 'foreign_key';
    case '53300':
    case '57P01':
    case '57P02':
    case '57P03':
    case 'ECONNREFUSED':
    case 'ECONNRESET':
    case 'ETIMEDOUT':
    case 'EPIPE':
      return 'unavailable';
    default:
      if (typeof code === 'string' && code.startsWith('08')) return 'unavailable';
      if (code === '55000' && typeof message === 'string' && message.includes('not currently accepting connections')) return 'unavailable';
      return typeof message === 'string' && /^Connection terminated|not queryable/.test(message) ? 'unavailable' : null;
  }
}
