import type { Kysely, Migration } from 'kysely';

/** Every table of the first release. Written with the schema builder only, so it runs on both dialects. */
export const initialSchema: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('email', 'text', (column) => column.notNull())
      .addColumn('email_normalized', 'text', (column) => column.notNull().unique())
      .addColumn('password_hash', 'text', (column) => column.notNull())
      .addColumn('role', 'text', (column) => column.notNull())
      .addColumn('disabled', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('created_at', 'text', (column) => column.notNull())
      .execute();

    await db.schema
      .createTable('sessions')
      .addColumn('id_hash', 'text', (column) => column.primaryKey())
      .addColumn('user_id', 'text', (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('created_at', 'text', (column) => column.notNull())
      .addColumn('expires_at', 'text', (column) => column.notNull())
      .execute();
    await db.schema.createIndex('sessions_user_id_index').on('sessions').column('user_id').execute();

    await db.schema
      .createTable('api_tokens')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('user_id', 'text', (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('token_hash', 'text', (column) => column.notNull().unique())
      .addColumn('prefix', 'text', (column) => column.notNull())
      .addColumn('created_at', 'text', (column) => column.notNull())
      .addColumn('last_used_at', 'text')
      .addColumn('expires_at', 'text')
      .addColumn('revoked_at', 'text')
      .execute();
    await db.schema.createIndex('api_tokens_user_id_index').on('api_tokens').column('user_id').execute();

    await db.schema
      .createTable('invites')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('code_hash', 'text', (column) => column.notNull().unique())
      .addColumn('email', 'text')
      .addColumn('created_by', 'text', (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('created_at', 'text', (column) => column.notNull())
      .addColumn('expires_at', 'text', (column) => column.notNull())
      .addColumn('used_at', 'text')
      .execute();

    await db.schema
      .createTable('agents')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('owner_id', 'text', (column) => column.references('users.id').onDelete('cascade'))
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('description', 'text', (column) => column.notNull())
      .addColumn('instructions', 'text', (column) => column.notNull())
      .addColumn('model', 'text', (column) => column.notNull())
      .addColumn('allowed_tools', 'text', (column) => column.notNull())
      .addColumn('disallowed_tools', 'text', (column) => column.notNull())
      .addColumn('max_turns', 'integer')
      .addColumn('memory_mb', 'integer', (column) => column.notNull())
      .addColumn('cpus', 'double precision', (column) => column.notNull())
      .addColumn('turn_timeout_seconds', 'integer', (column) => column.notNull())
      .addColumn('created_at', 'text', (column) => column.notNull())
      .addColumn('updated_at', 'text', (column) => column.notNull())
      .execute();
    await db.schema.createIndex('agents_owner_id_index').on('agents').column('owner_id').execute();

    await db.schema
      .createTable('conversations')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('user_id', 'text', (column) => column.notNull().references('users.id').onDelete('cascade'))
      // No cascade: an agent still used by conversations cannot be deleted.
      .addColumn('agent_id', 'text', (column) => column.notNull().references('agents.id'))
      .addColumn('title', 'text', (column) => column.notNull())
      .addColumn('claude_session_id', 'text')
      .addColumn('last_seq', 'integer', (column) => column.notNull().defaultTo(0))
      .addColumn('created_at', 'text', (column) => column.notNull())
      .addColumn('updated_at', 'text', (column) => column.notNull())
      .execute();
    await db.schema
      .createIndex('conversations_user_id_updated_at_index')
      .on('conversations')
      .columns(['user_id', 'updated_at'])
      .execute();
    await db.schema.createIndex('conversations_agent_id_index').on('conversations').column('agent_id').execute();

    await db.schema
      .createTable('turns')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('conversation_id', 'text', (column) =>
        column.notNull().references('conversations.id').onDelete('cascade'),
      )
      .addColumn('position', 'integer', (column) => column.notNull())
      .addColumn('status', 'text', (column) => column.notNull())
      .addColumn('input', 'text', (column) => column.notNull())
      .addColumn('created_at', 'text', (column) => column.notNull())
      .addColumn('started_at', 'text')
      .addColumn('ended_at', 'text')
      .addColumn('usage', 'text')
      .addColumn('cost_usd', 'double precision')
      .addColumn('error', 'text')
      .addUniqueConstraint('turns_conversation_id_position_unique', ['conversation_id', 'position'])
      .execute();
    await db.schema.createIndex('turns_status_index').on('turns').column('status').execute();

    await db.schema
      .createTable('events')
      .addColumn('conversation_id', 'text', (column) =>
        column.notNull().references('conversations.id').onDelete('cascade'),
      )
      .addColumn('seq', 'integer', (column) => column.notNull())
      // No foreign key: events are a log, and an `error` event may belong to no turn.
      .addColumn('turn_id', 'text')
      .addColumn('type', 'text', (column) => column.notNull())
      .addColumn('data', 'text', (column) => column.notNull())
      .addColumn('created_at', 'text', (column) => column.notNull())
      .addPrimaryKeyConstraint('events_pkey', ['conversation_id', 'seq'])
      .execute();

    // No foreign keys to conversations or turns: usage is billing history and outlives them.
    await db.schema
      .createTable('usage_records')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('user_id', 'text', (column) => column.notNull().references('users.id').onDelete('cascade'))
      .addColumn('conversation_id', 'text', (column) => column.notNull())
      .addColumn('turn_id', 'text')
      .addColumn('model', 'text', (column) => column.notNull())
      .addColumn('input_tokens', 'integer', (column) => column.notNull())
      .addColumn('output_tokens', 'integer', (column) => column.notNull())
      .addColumn('cache_creation_input_tokens', 'integer', (column) => column.notNull())
      .addColumn('cache_read_input_tokens', 'integer', (column) => column.notNull())
      .addColumn('created_at', 'text', (column) => column.notNull())
      .execute();
    await db.schema
      .createIndex('usage_records_user_id_created_at_index')
      .on('usage_records')
      .columns(['user_id', 'created_at'])
      .execute();
    await db.schema
      .createIndex('usage_records_conversation_id_index')
      .on('usage_records')
      .column('conversation_id')
      .execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const table of [
      'usage_records',
      'events',
      'turns',
      'conversations',
      'agents',
      'invites',
      'api_tokens',
      'sessions',
      'users',
    ]) {
      await db.schema.dropTable(table).execute();
    }
  },
};
