import type { Kysely, Migration } from 'kysely';

/**
 * Where the next CLI of a conversation continues its Claude session: the last assistant message of the last turn
 * kept, so that a turn that did not complete is left out (docs/decisions/0011-turns-that-do-not-complete.md).
 */
export const claudeResumePointSchema: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('conversations').addColumn('claude_resume_at', 'text').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('conversations').dropColumn('claude_resume_at').execute();
  },
};
