import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Limits that hold across replicas (docs/decisions/0014-shared-limits.md): each quota check reads the store, so the
 * store keeps what makes that cheap.
 * - `usage_totals`: token sums per user, UTC day and model, kept with every usage record, so a check reads at most
 *   31 days × models rows instead of a month of records. Filled from the records already there.
 * - `sandbox_sessions.replica_id`: the replica that runs the sandbox, so that the sessions of a replica that stopped
 *   can be ended by the others; an index for the user's open (and this month's) sessions.
 * - `rate_limit_windows`: one fixed-window counter per rate-limit key (times in epoch milliseconds).
 */
export const sharedLimitsSchema: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('usage_totals')
      .addColumn('user_id', 'text', (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('day', 'text', (column) => column.notNull())
      .addColumn('model', 'text', (column) => column.notNull())
      .addColumn('requests', 'bigint', (column) => column.notNull())
      .addColumn('input_tokens', 'bigint', (column) => column.notNull())
      .addColumn('output_tokens', 'bigint', (column) => column.notNull())
      .addColumn('cache_creation_input_tokens', 'bigint', (column) => column.notNull())
      .addColumn('cache_read_input_tokens', 'bigint', (column) => column.notNull())
      .addPrimaryKeyConstraint('usage_totals_pkey', ['user_id', 'day', 'model'])
      .execute();
    await sql`
      insert into usage_totals (user_id, day, model, requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens)
      select user_id, substr(created_at, 1, 10), model, count(*), sum(input_tokens), sum(output_tokens), sum(cache_creation_input_tokens), sum(cache_read_input_tokens)
      from usage_records
      group by user_id, substr(created_at, 1, 10), model
    `.execute(db);

    await db.schema.alterTable('sandbox_sessions').addColumn('replica_id', 'text').execute();
    await db.schema.createIndex('sandbox_sessions_user_id_ended_at_index').on('sandbox_sessions').columns(['user_id', 'ended_at']).execute();
    await db.schema
      .createIndex('sandbox_sessions_open_replica_id_index')
      .on('sandbox_sessions')
      .column('replica_id')
      .where(sql.ref('ended_at'), 'is', null)
      .execute();

    await db.schema
      .createTable('rate_limit_windows')
      .addColumn('key', 'text', (column) => column.primaryKey())
      .addColumn('window_start', 'bigint', (column) => column.notNull())
      .addColumn('count', 'integer', (column) => column.notNull())
      .execute();
    await db.schema.createIndex('rate_limit_windows_window_start_index').on('rate_limit_windows').column('window_start').execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('rate_limit_windows').execute();
    await db.schema.dropIndex('sandbox_sessions_open_replica_id_index').execute();
    await db.schema.dropIndex('sandbox_sessions_user_id_ended_at_index').execute();
    await db.schema.alterTable('sandbox_sessions').dropColumn('replica_id').execute();
    await db.schema.dropTable('usage_totals').execute();
  },
};
