import { silentLogger, type Logger } from '../core/logger.ts';
import type { Store } from '../core/store.ts';
import { createPostgresStore } from './postgres/index.ts';
import { createSqliteStore } from './sqlite/index.ts';

export type StoreConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** The Store for the configured backend. Drivers load and connect on first use (or `migrate()`). */
export function createStore(config: StoreConfig, logger: Logger = silentLogger): Store {
  switch (config.kind) {
    case 'sqlite':
      return createSqliteStore({ path: config.path }, logger);
    case 'postgres':
      return createPostgresStore({ url: config.url }, logger);
  }
}

export { createPostgresStore, type PostgresStoreConfig } from './postgres/index.ts';
export { createSqliteStore, type SqliteStoreConfig } from './sqlite/index.ts';
