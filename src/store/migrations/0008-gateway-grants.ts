import type { Kysely, Migration } from 'kysely';

/**
 * Sandbox grants kept in the store, so that any replica can serve a sandbox's model and egress traffic
 * (`gateway_grants`, keyed by the SHA-256 of the sandbox token: the token itself is never stored), and work that one
 * replica at a time does, held like a lease (`replica_tasks`).
 */
export const gatewayGrantsSchema: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    // No foreign key to replicas: a dead replica's row goes, and its grants are then cleaned away.
    await db.schema
      .createTable('gateway_grants')
      .addColumn('token_hash', 'text', (column) => column.primaryKey())
      .addColumn('sandbox_id', 'text', (column) => column.notNull())
      .addColumn('user_id', 'text', (column) => column.notNull())
      .addColumn('conversation_id', 'text', (column) =>
        column.notNull().references('conversations.id').onDelete('cascade'),
      )
      .addColumn('agent_id', 'text')
      .addColumn('replica_id', 'text', (column) => column.notNull())
      .addColumn('turn_id', 'text')
      .addColumn('egress_domains', 'text', (column) => column.notNull().defaultTo('[]'))
      .addColumn('created_at', 'text', (column) => column.notNull())
      .addColumn('revoked_at', 'text')
      .execute();
    await db.schema.createIndex('gateway_grants_replica_id_index').on('gateway_grants').column('replica_id').execute();
    await db.schema.createIndex('gateway_grants_conversation_id_index').on('gateway_grants').column('conversation_id').execute();

    await db.schema
      .createTable('replica_tasks')
      .addColumn('name', 'text', (column) => column.primaryKey())
      .addColumn('replica_id', 'text', (column) => column.notNull())
      .addColumn('expires_at', 'text', (column) => column.notNull())
      .execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const table of ['replica_tasks', 'gateway_grants']) {
      await db.schema.dropTable(table).execute();
    }
  },
};
