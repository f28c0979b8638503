import type { Migration, MigrationProvider } from 'kysely';
import { initialSchema } from './0001-initial-schema.ts';
import { gatewaySchema } from './0002-gateway.ts';
import { sandboxRuntimeSchema } from './0003-sandbox-runtime.ts';
import { platformSettingsSchema } from './0004-platform-settings.ts';
import { claudeResumePointSchema } from './0005-claude-resume-point.ts';
import { replicasSchema } from './0006-replicas.ts';
import { sharedLimitsSchema } from './0007-shared-limits.ts';
import { gatewayGrantsSchema } from './0008-gateway-grants.ts';

/**
 * Every migration, keyed by name; Kysely applies them in name order. Kept in code rather than
 * read from a folder so the store works the same under tsx, vitest and any bundler.
 */
export const migrations: Record<string, Migration> = {
  '0001-initial-schema': initialSchema,
  '0002-gateway': gatewaySchema,
  '0003-sandbox-runtime': sandboxRuntimeSchema,
  '0004-platform-settings': platformSettingsSchema,
  '0005-claude-resume-point': claudeResumePointSchema,
  '0006-replicas': replicasSchema,
  '0007-shared-limits': sharedLimitsSchema,
  '0008-gateway-grants': gatewayGrantsSchema,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
