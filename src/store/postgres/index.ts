import { PostgresDialect } from 'kysely';
import { silentLogger, type Logger } from '../../core/logger.ts';
import type { Store } from '../../core/store.ts';
import { SqlStore, type ConstraintViolation } from '../sql-store.ts';

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
  return new SqlStore({ kind: 'postgres', dialect, classifyError: classifyPostgresError, logger });
}

/** PostgreSQL reports SQLSTATE codes: 23505 unique_violation, 23503 foreign_key_violation. */
export function classifyPostgresError(error: unknown): ConstraintViolation | null {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case '23505':
      return 'unique';
    case '23503':
      return 'foreign_key';
    default:
      return null;
  }
}
