import type { Kysely, Migration } from 'kysely';

/** Agents choose their Docker runtime (runc or gVisor's runsc); `default` follows the installation. */
export const sandboxRuntimeSchema: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('agents')
      .addColumn('sandbox_runtime', 'text', (column) => column.notNull().defaultTo('default'))
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('agents').dropColumn('sandbox_runtime').execute();
  },
};
