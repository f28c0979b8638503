import type { Migration, MigrationProvider } from 'kysely';
import { initialSchema } from './0001-initial-schema.ts';
import { gatewaySchema } from './0002-gateway.ts';
import { sandboxRuntimeSchema } from './0003-sandbox-runtime.ts';
import { platformSettingsSchema } from './0004-platform-settings.ts';
import { claudeResumePointSchema } from './0005-claude-resume-point.ts';

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
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
