import type { Kysely, Migration } from 'kysely';

/**
 * Several server processes (replicas) on one PostgreSQL: each reports itself in `replicas`; a conversation's turns run
 * on the replica that holds its lease, whose `token` fences off writes of a former holder; `lease_history` keeps every
 * change of holder.
 */
export const replicasSchema: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('replicas')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('version', 'text', (column) => column.notNull())
      .addColumn('url', 'text')
      .addColumn('hostname', 'text', (column) => column.notNull())
      .addColumn('pid', 'integer', (column) => column.notNull())
      .addColumn('started_at', 'text', (column) => column.notNull())
      .addColumn('heartbeat_at', 'text', (column) => column.notNull())
      .addColumn('draining', 'integer', (column) => column.notNull().defaultTo(0))
      .execute();

    // One row per conversation from its first claim on. Released, it stays with no holder (replica_id null), so that
    // the token keeps growing across holders. No foreign key to replicas: a dead replica's row goes, its leases expire.
    await db.schema
      .createTable('conversation_leases')
      .addColumn('conversation_id', 'text', (column) =>
        column.primaryKey().references('conversations.id').onDelete('cascade'),
      )
      .addColumn('replica_id', 'text')
      .addColumn('token', 'integer', (column) => column.notNull())
      .addColumn('expires_at', 'text', (column) => column.notNull())
      .addColumn('previous_replica_id', 'text')
      .execute();
    await db.schema.createIndex('conversation_leases_replica_id_index').on('conversation_leases').column('replica_id').execute();
    await db.schema.createIndex('conversation_leases_expires_at_index').on('conversation_leases').column('expires_at').execute();

    await db.schema
      .createTable('lease_history')
      .addColumn('conversation_id', 'text', (column) =>
        column.notNull().references('conversations.id').onDelete('cascade'),
      )
      .addColumn('token', 'integer', (column) => column.notNull())
      .addColumn('replica_id', 'text', (column) => column.notNull())
      .addColumn('previous_replica_id', 'text')
      .addColumn('claimed_at', 'text', (column) => column.notNull())
      .addPrimaryKeyConstraint('lease_history_pkey', ['conversation_id', 'token'])
      .execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const table of ['lease_history', 'conversation_leases', 'replicas']) {
      await db.schema.dropTable(table).execute();
    }
  },
};
