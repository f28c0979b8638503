import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Platform-wide settings as key/value rows. The first one is the `first-admin` claim: the account that inserts it
 * becomes the administrator, so concurrent first registrations cannot all win. A database that already has users
 * gets the claim at once, for its oldest account.
 */
export const platformSettingsSchema: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('platform_settings')
      .addColumn('key', 'text', (column) => column.primaryKey())
      .addColumn('value', 'text', (column) => column.notNull())
      .execute();
    await sql`insert into platform_settings ("key", "value") select 'first-admin', id from users order by created_at, id limit 1`.execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('platform_settings').execute();
  },
};
