import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The complete gateway (issue 5): agents' egress domains, usage attributed to agents, quota overrides,
 * users' own credentials (encrypted), the egress log and sandbox sessions (for sandbox hours).
 */
export const gatewaySchema: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('agents')
      .addColumn('egress_domains', 'text', (column) => column.notNull().defaultTo('[]'))
      .execute();

    await db.schema.alterTable('usage_records').addColumn('agent_id', 'text').execute();
    // Older records get the agent of their conversation, where it still exists.
    await sql`update usage_records set agent_id = (select conversations.agent_id from conversations where conversations.id = usage_records.conversation_id)`.execute(
      db,
    );
    await db.schema.createIndex('usage_records_created_at_index').on('usage_records').column('created_at').execute();

    await db.schema
      .createTable('quota_overrides')
      .addColumn('user_id', 'text', (column) => column.primaryKey().references('users.id').onDelete('cascade'))
      .addColumn('limits', 'text', (column) => column.notNull())
      .addColumn('updated_at', 'text', (column) => column.notNull())
      .execute();

    await db.schema
      .createTable('user_credentials')
      .addColumn('user_id', 'text', (column) => column.primaryKey().references('users.id').onDelete('cascade'))
      .addColumn('kind', 'text', (column) => column.notNull())
      .addColumn('ciphertext', 'text', (column) => column.notNull())
      .addColumn('created_at', 'text', (column) => column.notNull())
      .addColumn('updated_at', 'text', (column) => column.notNull())
      .execute();

    // No foreign key to conversations: the log is an audit trail and outlives them.
    await db.schema
      .createTable('egress_log')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('conversation_id', 'text', (column) => column.notNull())
      .addColumn('user_id', 'text', (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('sandbox_id', 'text', (column) => column.notNull())
      .addColumn('host', 'text', (column) => column.notNull())
      .addColumn('port', 'integer', (column) => column.notNull())
      .addColumn('address', 'text')
      .addColumn('decision', 'text', (column) => column.notNull())
      .addColumn('reason', 'text')
      .addColumn('created_at', 'text', (column) => column.notNull())
      .execute();
    await db.schema
      .createIndex('egress_log_conversation_id_created_at_index')
      .on('egress_log')
      .columns(['conversation_id', 'created_at'])
      .execute();

    await db.schema
      .createTable('sandbox_sessions')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('user_id', 'text', (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('conversation_id', 'text', (column) => column.notNull())
      .addColumn('started_at', 'text', (column) => column.notNull())
      .addColumn('ended_at', 'text')
      .execute();
    await db.schema
      .createIndex('sandbox_sessions_user_id_started_at_index')
      .on('sandbox_sessions')
      .columns(['user_id', 'started_at'])
      .execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const table of ['sandbox_sessions', 'egress_log', 'user_credentials', 'quota_overrides']) {
      await db.schema.dropTable(table).execute();
    }
    await db.schema.dropIndex('usage_records_created_at_index').execute();
    await db.schema.alterTable('usage_records').dropColumn('agent_id').execute();
    await db.schema.alterTable('agents').dropColumn('egress_domains').execute();
  },
};
