import { Kysely, Migrator, sql, type Dialect, type RawBuilder, type Selectable } from 'kysely';
import { nowIso } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { ConversationEvent, EventData } from '../core/events.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { AgentPatch, NewApiToken, NewInvite, NewUser, Store, TurnPatch, UsageAggregate, UsageQuery } from '../core/store.ts';
import type {
  Agent,
  ApiToken,
  BrowserSession,
  Conversation,
  EgressRecord,
  Invite,
  QuotaLimits,
  QuotaOverride,
  Role,
  SandboxSession,
  StoredCredential,
  Turn,
  TurnStatus,
  UsageRecord,
  User,
  UserWithPassword,
} from '../core/types.ts';
import type {
  ConversationsTable,
  Database,
  QuotaOverridesTable,
  TurnsTable,
  UserCredentialsTable,
  UsersTable,
} from './database.ts';
import { migrationProvider } from './migrations/index.ts';
import {
  fromAgent,
  fromAgentPatch,
  fromEgressRecord,
  fromUsageRecord,
  normalizeEmail,
  toAgent,
  toApiToken,
  toConversation,
  toEgressRecord,
  toEvent,
  toInvite,
  toTurn,
  toUsageRecord,
  toUser,
  toUserWithPassword,
} from './rows.ts';

export type StoreKind = Store['kind'];

/**
 * The driver errors the store turns into AppErrors of their own, each driver reporting them its own way: constraint
 * violations, and `unavailable` (the database cannot be reached or stays locked right now; worth trying again).
 */
export type ConstraintViolation = 'unique' | 'foreign_key' | 'unavailable';

export interface SqlStoreOptions {
  kind: StoreKind;
  /** A Kysely dialect whose driver connects lazily, on first use. */
  dialect: Dialect;
  /** Recognizes a constraint violation in the driver's error, or answers null. */
  classifyError: (error: unknown) => ConstraintViolation | null;
  logger?: Logger;
}

interface ErrorMessages {
  unique?: string;
  foreignKey?: string;
}

/** The columns usage can be grouped by; ISO timestamps make the UTC day their first ten characters on every dialect. */
const usageGroupings: Array<{ name: UsageQuery['groupBy'][number]; expression: RawBuilder<unknown> }> = [
  { name: 'user', expression: sql`user_id` },
  { name: 'day', expression: sql`substr(created_at, 1, 10)` },
  { name: 'agent', expression: sql`agent_id` },
  { name: 'model', expression: sql`model` },
];

/** Orders groups by user, day, agent (null first), model. */
function compareGroups(a: UsageAggregate, b: UsageAggregate): number {
  const keys = (aggregate: UsageAggregate): string[] => [aggregate.userId ?? '', aggregate.day ?? '', aggregate.agentId === null ? '' : `~${aggregate.agentId ?? ''}`, aggregate.model ?? ''];
  const left = keys(a);
  const right = keys(b);
  for (let index = 0; index < left.length; index++) {
    if (left[index]! < right[index]!) return -1;
    if (left[index]! > right[index]!) return 1;
  }
  return 0;
}

function toQuotaOverride(row: Selectable<QuotaOverridesTable>): QuotaOverride {
  return { userId: row.user_id, limits: JSON.parse(row.limits) as Partial<QuotaLimits>, updatedAt: row.updated_at };
}

function toStoredCredential(row: Selectable<UserCredentialsTable>): StoredCredential {
  return { userId: row.user_id, kind: row.kind, ciphertext: row.ciphertext, createdAt: row.created_at, updatedAt: row.updated_at };
}

/** The Store over Kysely: one implementation for every SQL dialect. */
export class SqlStore implements Store {
  readonly kind: StoreKind;
  readonly #db: Kysely<Database>;
  readonly #classifyError: SqlStoreOptions['classifyError'];
  readonly #logger: Logger;

  constructor(options: SqlStoreOptions) {
    this.kind = options.kind;
    this.#db = new Kysely<Database>({ dialect: options.dialect });
    this.#classifyError = options.classifyError;
    this.#logger = options.logger ?? silentLogger;
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.#db, provider: migrationProvider });
    const { error, results } = await migrator.migrateToLatest();
    for (const result of results ?? []) {
      if (result.status === 'Success') {
        this.#logger.info({ backend: this.kind, migration: result.migrationName }, 'migration applied');
      } else if (result.status === 'Error') {
        this.#logger.error({ backend: this.kind, migration: result.migrationName }, 'migration failed');
      }
    }
    if (error !== undefined) throw this.#wrap('migrate', error);
  }

  ping(): Promise<void> {
    return this.#run('ping', async () => {
      await sql`select 1`.execute(this.#db);
    });
  }

  close(): Promise<void> {
    return this.#run('close', () => this.#db.destroy());
  }

  // Users

  createUser(user: NewUser): Promise<User> {
    return this.#run(
      'createUser',
      async () => {
        const row = await this.#db
          .insertInto('users')
          .values(newUserRow(user))
          .returningAll()
          .executeTakeFirstOrThrow();
        return toUser(row);
      },
      { unique: 'a user with this email already exists' },
    );
  }

  createFirstAdmin(user: Omit<NewUser, 'role'>): Promise<User | null> {
    return this.#run(
      'createFirstAdmin',
      () =>
        this.#db.transaction().execute(async (transaction) => {
          // The primary key makes the claim a race with one winner on both dialects; a loser inserts nothing.
          const claim = await transaction
            .insertInto('platform_settings')
            .values({ key: 'first-admin', value: user.id })
            .onConflict((conflict) => conflict.column('key').doNothing())
            .executeTakeFirst();
          if (Number(claim.numInsertedOrUpdatedRows ?? 0) === 0) return null;
          const row = await transaction
            .insertInto('users')
            .values(newUserRow({ ...user, role: 'admin' }))
            .returningAll()
            .executeTakeFirstOrThrow();
          return toUser(row);
        }),
      { unique: 'a user with this email already exists' },
    );
  }

  countUsers(): Promise<number> {
    return this.#run('countUsers', async () => {
      const row = await this.#db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number | string>().as('count'))
        .executeTakeFirstOrThrow();
      return Number(row.count);
    });
  }

  getUser(id: string): Promise<User | null> {
    return this.#run('getUser', async () => {
      const row = await this.#db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? null : toUser(row);
    });
  }

  getUserByEmail(email: string): Promise<UserWithPassword | null> {
    return this.#run('getUserByEmail', async () => {
      const row = await this.#db
        .selectFrom('users')
        .selectAll()
        .where('email_normalized', '=', normalizeEmail(email))
        .executeTakeFirst();
      return row === undefined ? null : toUserWithPassword(row);
    });
  }

  listUsers(): Promise<User[]> {
    return this.#run('listUsers', async () => {
      const rows = await this.#db.selectFrom('users').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map(toUser);
    });
  }

  updateUser(id: string, patch: { role?: Role; disabled?: boolean; passwordHash?: string }): Promise<User | null> {
    return this.#run('updateUser', async () => {
      const columns: Partial<UsersTable> = {};
      if (patch.role !== undefined) columns.role = patch.role;
      if (patch.disabled !== undefined) columns.disabled = patch.disabled ? 1 : 0;
      if (patch.passwordHash !== undefined) columns.password_hash = patch.passwordHash;
      if (Object.keys(columns).length === 0) return this.getUser(id);
      const row = await this.#db
        .updateTable('users')
        .set(columns)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? null : toUser(row);
    });
  }

  // Browser sessions

  createSession(session: { idHash: string; userId: string; expiresAt: string }): Promise<void> {
    return this.#run('createSession', async () => {
      await this.#db
        .insertInto('sessions')
        .values({
          id_hash: session.idHash,
          user_id: session.userId,
          created_at: nowIso(),
          expires_at: session.expiresAt,
        })
        .execute();
    });
  }

  getSession(idHash: string, now: string): Promise<BrowserSession | null> {
    return this.#run('getSession', async () => {
      const row = await this.#db
        .selectFrom('sessions')
        .selectAll()
        .where('id_hash', '=', idHash)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (row === undefined) return null;
      return { id: row.id_hash, userId: row.user_id, createdAt: row.created_at, expiresAt: row.expires_at };
    });
  }

  deleteSession(idHash: string): Promise<void> {
    return this.#run('deleteSession', async () => {
      await this.#db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
    });
  }

  deleteUserSessions(userId: string): Promise<void> {
    return this.#run('deleteUserSessions', async () => {
      await this.#db.deleteFrom('sessions').where('user_id', '=', userId).execute();
    });
  }

  // API tokens

  createApiToken(token: NewApiToken): Promise<ApiToken> {
    return this.#run(
      'createApiToken',
      async () => {
        const row = await this.#db
          .insertInto('api_tokens')
          .values({
            id: token.id,
            user_id: token.userId,
            name: token.name,
            token_hash: token.tokenHash,
            prefix: token.prefix,
            created_at: nowIso(),
            last_used_at: null,
            expires_at: token.expiresAt,
            revoked_at: null,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return toApiToken(row);
      },
      { unique: 'an API token with this id or hash already exists' },
    );
  }

  findLiveApiToken(tokenHash: string, now: string): Promise<ApiToken | null> {
    return this.#run('findLiveApiToken', async () => {
      const row = await this.#db
        .selectFrom('api_tokens')
        .selectAll()
        .where('token_hash', '=', tokenHash)
        .where('revoked_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .executeTakeFirst();
      return row === undefined ? null : toApiToken(row);
    });
  }

  listApiTokens(userId: string): Promise<ApiToken[]> {
    return this.#run('listApiTokens', async () => {
      const rows = await this.#db
        .selectFrom('api_tokens')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toApiToken);
    });
  }

  revokeApiToken(userId: string, tokenId: string, now: string): Promise<boolean> {
    return this.#run('revokeApiToken', async () => {
      const result = await this.#db
        .updateTable('api_tokens')
        .set({ revoked_at: now })
        .where('id', '=', tokenId)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  touchApiToken(tokenId: string, now: string): Promise<void> {
    return this.#run('touchApiToken', async () => {
      await this.#db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', tokenId).execute();
    });
  }

  // Invites

  createInvite(invite: NewInvite): Promise<Invite> {
    return this.#run(
      'createInvite',
      async () => {
        const row = await this.#db
          .insertInto('invites')
          .values({
            id: invite.id,
            code_hash: invite.codeHash,
            email: invite.email,
            created_by: invite.createdBy,
            created_at: nowIso(),
            expires_at: invite.expiresAt,
            used_at: null,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return toInvite(row);
      },
      { unique: 'an invite with this id or code already exists' },
    );
  }

  consumeInvite(codeHash: string, email: string, now: string): Promise<Invite | null> {
    return this.#run('consumeInvite', async () => {
      // One conditional UPDATE, so two concurrent sign-ups cannot both use the invite.
      const row = await this.#db
        .updateTable('invites')
        .set({ used_at: now })
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .where((where) => where.or([where('email', 'is', null), where('email', '=', email)]))
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? null : toInvite(row);
    });
  }

  // Agents

  upsertAgent(agent: Agent): Promise<Agent> {
    return this.#run('upsertAgent', async () => {
      const { id: _id, created_at: _createdAt, ...changes } = fromAgent(agent);
      const row = await this.#db
        .insertInto('agents')
        .values(fromAgent(agent))
        .onConflict((conflict) =>
          conflict
            .column('id')
            .doUpdateSet(changes)
            // Only built-in agents are replaced; a user's agent with the same id is left alone.
            .where('agents.owner_id', 'is', null),
        )
        .returningAll()
        .executeTakeFirst();
      if (row === undefined) throw new AppError('CONFLICT', `agent ${agent.id} exists and is not built-in`);
      return toAgent(row);
    });
  }

  createAgent(agent: Agent): Promise<Agent> {
    return this.#run(
      'createAgent',
      async () => {
        const row = await this.#db.insertInto('agents').values(fromAgent(agent)).returningAll().executeTakeFirstOrThrow();
        return toAgent(row);
      },
      { unique: 'an agent with this id already exists' },
    );
  }

  getAgent(id: string): Promise<Agent | null> {
    return this.#run('getAgent', async () => {
      const row = await this.#db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? null : toAgent(row);
    });
  }

  listAgents(ownerId: string): Promise<Agent[]> {
    return this.#run('listAgents', async () => {
      const own = await this.#db
        .selectFrom('agents')
        .selectAll()
        .where('owner_id', '=', ownerId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      const builtIn = await this.#db
        .selectFrom('agents')
        .selectAll()
        .where('owner_id', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return [...own, ...builtIn].map(toAgent);
    });
  }

  updateAgent(id: string, patch: AgentPatch, now: string): Promise<Agent | null> {
    return this.#run('updateAgent', async () => {
      const row = await this.#db
        .updateTable('agents')
        .set({ ...fromAgentPatch(patch), updated_at: now })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? null : toAgent(row);
    });
  }

  deleteAgent(id: string): Promise<boolean> {
    return this.#run(
      'deleteAgent',
      async () => {
        const result = await this.#db.deleteFrom('agents').where('id', '=', id).executeTakeFirst();
        return result.numDeletedRows > 0n;
      },
      { foreignKey: 'the agent is used by conversations' },
    );
  }

  countConversationsUsingAgent(agentId: string): Promise<number> {
    return this.#run('countConversationsUsingAgent', async () => {
      const row = await this.#db
        .selectFrom('conversations')
        .select((eb) => eb.fn.countAll<number | string>().as('count'))
        .where('agent_id', '=', agentId)
        .executeTakeFirstOrThrow();
      return Number(row.count);
    });
  }

  // Conversations

  createConversation(conversation: {
    id: string;
    userId: string;
    agentId: string;
    title: string;
  }): Promise<Conversation> {
    return this.#run(
      'createConversation',
      async () => {
        const now = nowIso();
        const row = await this.#db
          .insertInto('conversations')
          .values({
            id: conversation.id,
            user_id: conversation.userId,
            agent_id: conversation.agentId,
            title: conversation.title,
            claude_session_id: null,
            claude_resume_at: null,
            last_seq: 0,
            created_at: now,
            updated_at: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return toConversation(row);
      },
      {
        unique: 'a conversation with this id already exists',
        foreignKey: 'the conversation refers to a missing user or agent',
      },
    );
  }

  getConversation(id: string): Promise<Conversation | null> {
    return this.#run('getConversation', async () => {
      const row = await this.#db.selectFrom('conversations').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? null : toConversation(row);
    });
  }

  listConversations(userId: string): Promise<Conversation[]> {
    return this.#run('listConversations', async () => {
      const rows = await this.#db
        .selectFrom('conversations')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('updated_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
      return rows.map(toConversation);
    });
  }

  updateConversation(
    id: string,
    patch: { title?: string; claudeSessionId?: string | null; claudeResumeAt?: string | null },
  ): Promise<Conversation | null> {
    return this.#run('updateConversation', async () => {
      const columns: Partial<ConversationsTable> = { updated_at: nowIso() };
      if (patch.title !== undefined) columns.title = patch.title;
      if (patch.claudeSessionId !== undefined) columns.claude_session_id = patch.claudeSessionId;
      if (patch.claudeResumeAt !== undefined) columns.claude_resume_at = patch.claudeResumeAt;
      const row = await this.#db
        .updateTable('conversations')
        .set(columns)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? null : toConversation(row);
    });
  }

  deleteConversation(id: string): Promise<boolean> {
    return this.#run('deleteConversation', () =>
      this.#db.transaction().execute(async (transaction) => {
        await transaction.deleteFrom('events').where('conversation_id', '=', id).execute();
        await transaction.deleteFrom('turns').where('conversation_id', '=', id).execute();
        const result = await transaction.deleteFrom('conversations').where('id', '=', id).executeTakeFirst();
        return result.numDeletedRows > 0n;
      }),
    );
  }

  // Turns

  createTurn(turn: { id: string; conversationId: string; input: string }): Promise<Turn> {
    return this.#run(
      'createTurn',
      () =>
        this.#db.transaction().execute(async (transaction) => {
          const now = nowIso();
          // Touching the conversation row first locks it, so concurrent turns get distinct positions.
          const conversation = await transaction
            .updateTable('conversations')
            .set({ updated_at: now })
            .where('id', '=', turn.conversationId)
            .returning('id')
            .executeTakeFirst();
          if (conversation === undefined) throw new AppError('NOT_FOUND', 'conversation not found');
          const last = await transaction
            .selectFrom('turns')
            .select((eb) => eb.fn.max('position').as('position'))
            .where('conversation_id', '=', turn.conversationId)
            .executeTakeFirst();
          const row = await transaction
            .insertInto('turns')
            .values({
              id: turn.id,
              conversation_id: turn.conversationId,
              position: Number(last?.position ?? 0) + 1,
              status: 'queued',
              input: turn.input,
              created_at: now,
              started_at: null,
              ended_at: null,
              usage: null,
              cost_usd: null,
              error: null,
            })
            .returningAll()
            .executeTakeFirstOrThrow();
          return toTurn(row);
        }),
      { unique: 'a turn with this id already exists' },
    );
  }

  getTurn(id: string): Promise<Turn | null> {
    return this.#run('getTurn', async () => {
      const row = await this.#db.selectFrom('turns').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? null : toTurn(row);
    });
  }

  listTurns(conversationId: string): Promise<Turn[]> {
    return this.#run('listTurns', async () => {
      const rows = await this.#db
        .selectFrom('turns')
        .selectAll()
        .where('conversation_id', '=', conversationId)
        .orderBy('position')
        .execute();
      return rows.map(toTurn);
    });
  }

  listTurnsByStatus(statuses: TurnStatus[]): Promise<Turn[]> {
    return this.#run('listTurnsByStatus', async () => {
      if (statuses.length === 0) return [];
      const rows = await this.#db
        .selectFrom('turns')
        .selectAll()
        .where('status', 'in', statuses)
        .orderBy('created_at')
        .orderBy('conversation_id')
        .orderBy('position')
        .execute();
      return rows.map(toTurn);
    });
  }

  updateTurn(id: string, patch: TurnPatch): Promise<Turn | null> {
    return this.#run('updateTurn', async () => {
      const columns: Partial<TurnsTable> = {};
      if (patch.status !== undefined) columns.status = patch.status;
      if (patch.startedAt !== undefined) columns.started_at = patch.startedAt;
      if (patch.endedAt !== undefined) columns.ended_at = patch.endedAt;
      if (patch.usage !== undefined) columns.usage = patch.usage === null ? null : JSON.stringify(patch.usage);
      if (patch.costUsd !== undefined) columns.cost_usd = patch.costUsd;
      if (patch.error !== undefined) columns.error = patch.error;
      if (Object.keys(columns).length === 0) return this.getTurn(id);
      const row = await this.#db
        .updateTable('turns')
        .set(columns)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      return row === undefined ? null : toTurn(row);
    });
  }

  // Events

  appendEvent(conversationId: string, data: EventData): Promise<ConversationEvent> {
    return this.#run('appendEvent', () =>
      this.#db.transaction().execute(async (transaction) => {
        const now = nowIso();
        // The UPDATE takes the row lock, so concurrent appends are numbered one after another.
        const conversation = await transaction
          .updateTable('conversations')
          .set((eb) => ({ last_seq: eb('last_seq', '+', 1), updated_at: now }))
          .where('id', '=', conversationId)
          .returning('last_seq')
          .executeTakeFirst();
        if (conversation === undefined) throw new AppError('NOT_FOUND', 'conversation not found');
        const row = await transaction
          .insertInto('events')
          .values({
            conversation_id: conversationId,
            seq: Number(conversation.last_seq),
            turn_id: data.turnId,
            type: data.type,
            data: JSON.stringify(data),
            created_at: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return toEvent(row);
      }),
    );
  }

  listEvents(conversationId: string, options: { afterSeq?: number; limit?: number } = {}): Promise<ConversationEvent[]> {
    return this.#run('listEvents', async () => {
      let query = this.#db
        .selectFrom('events')
        .selectAll()
        .where('conversation_id', '=', conversationId)
        .where('seq', '>', options.afterSeq ?? 0)
        .orderBy('seq');
      if (options.limit !== undefined) query = query.limit(options.limit);
      const rows = await query.execute();
      return rows.map(toEvent);
    });
  }

  // Usage

  recordUsage(record: UsageRecord): Promise<void> {
    return this.#run(
      'recordUsage',
      async () => {
        await this.#db.insertInto('usage_records').values(fromUsageRecord(record)).execute();
      },
      { unique: 'a usage record with this id already exists' },
    );
  }

  listUsage(filter: { userId?: string; conversationId?: string; turnId?: string }): Promise<UsageRecord[]> {
    return this.#run('listUsage', async () => {
      let query = this.#db.selectFrom('usage_records').selectAll();
      if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
      if (filter.conversationId !== undefined) query = query.where('conversation_id', '=', filter.conversationId);
      if (filter.turnId !== undefined) query = query.where('turn_id', '=', filter.turnId);
      const rows = await query.orderBy('created_at').orderBy('id').execute();
      return rows.map(toUsageRecord);
    });
  }

  aggregateUsage(query: UsageQuery): Promise<UsageAggregate[]> {
    return this.#run('aggregateUsage', async () => {
      const groups = usageGroupings.filter((grouping) => query.groupBy.includes(grouping.name));
      let select = this.#db.selectFrom('usage_records');
      if (query.userId !== undefined) select = select.where('user_id', '=', query.userId);
      if (query.from !== undefined) select = select.where('created_at', '>=', query.from);
      if (query.to !== undefined) select = select.where('created_at', '<', query.to);
      const rows = await select
        .select((eb) => [
          ...groups.map((grouping) => grouping.expression.as(grouping.name)),
          eb.fn.countAll<number | string>().as('requests'),
          eb.fn.sum<number | string | null>('input_tokens').as('input_tokens'),
          eb.fn.sum<number | string | null>('output_tokens').as('output_tokens'),
          eb.fn.sum<number | string | null>('cache_creation_input_tokens').as('cache_creation_input_tokens'),
          eb.fn.sum<number | string | null>('cache_read_input_tokens').as('cache_read_input_tokens'),
        ])
        .$call((builder) => (groups.length === 0 ? builder : builder.groupBy(groups.map((grouping) => grouping.expression))))
        .execute();
      return rows
        .map((row) => row as unknown as Record<string, string | number | null>)
        .filter((row) => Number(row.requests) > 0)
        .map((row) => {
          const aggregate: UsageAggregate = {
            requests: Number(row.requests),
            usage: {
              inputTokens: Number(row.input_tokens ?? 0),
              outputTokens: Number(row.output_tokens ?? 0),
              cacheCreationInputTokens: Number(row.cache_creation_input_tokens ?? 0),
              cacheReadInputTokens: Number(row.cache_read_input_tokens ?? 0),
            },
          };
          if (query.groupBy.includes('user')) aggregate.userId = String(row.user);
          if (query.groupBy.includes('day')) aggregate.day = String(row.day);
          if (query.groupBy.includes('agent')) aggregate.agentId = row.agent === null ? null : String(row.agent);
          if (query.groupBy.includes('model')) aggregate.model = String(row.model);
          return aggregate;
        })
        // Sorted here rather than in SQL: the dialects disagree on where NULL sorts.
        .sort((a, b) => compareGroups(a, b));
    });
  }

  // Quotas

  getQuotaOverride(userId: string): Promise<QuotaOverride | null> {
    return this.#run('getQuotaOverride', async () => {
      const row = await this.#db.selectFrom('quota_overrides').selectAll().where('user_id', '=', userId).executeTakeFirst();
      return row === undefined ? null : toQuotaOverride(row);
    });
  }

  listQuotaOverrides(): Promise<QuotaOverride[]> {
    return this.#run('listQuotaOverrides', async () => {
      const rows = await this.#db.selectFrom('quota_overrides').selectAll().orderBy('user_id').execute();
      return rows.map(toQuotaOverride);
    });
  }

  putQuotaOverride(override: QuotaOverride): Promise<QuotaOverride> {
    return this.#run(
      'putQuotaOverride',
      async () => {
        const values = { user_id: override.userId, limits: JSON.stringify(override.limits), updated_at: override.updatedAt };
        const row = await this.#db
          .insertInto('quota_overrides')
          .values(values)
          .onConflict((conflict) => conflict.column('user_id').doUpdateSet({ limits: values.limits, updated_at: values.updated_at }))
          .returningAll()
          .executeTakeFirstOrThrow();
        return toQuotaOverride(row);
      },
      { foreignKey: 'the user does not exist' },
    );
  }

  deleteQuotaOverride(userId: string): Promise<boolean> {
    return this.#run('deleteQuotaOverride', async () => {
      const result = await this.#db.deleteFrom('quota_overrides').where('user_id', '=', userId).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  // Users' own credentials

  getCredential(userId: string): Promise<StoredCredential | null> {
    return this.#run('getCredential', async () => {
      const row = await this.#db.selectFrom('user_credentials').selectAll().where('user_id', '=', userId).executeTakeFirst();
      return row === undefined ? null : toStoredCredential(row);
    });
  }

  putCredential(credential: Omit<StoredCredential, 'createdAt'>): Promise<StoredCredential> {
    return this.#run(
      'putCredential',
      async () => {
        const row = await this.#db
          .insertInto('user_credentials')
          .values({
            user_id: credential.userId,
            kind: credential.kind,
            ciphertext: credential.ciphertext,
            created_at: credential.updatedAt,
            updated_at: credential.updatedAt,
          })
          .onConflict((conflict) =>
            conflict.column('user_id').doUpdateSet({ kind: credential.kind, ciphertext: credential.ciphertext, updated_at: credential.updatedAt }),
          )
          .returningAll()
          .executeTakeFirstOrThrow();
        return toStoredCredential(row);
      },
      { foreignKey: 'the user does not exist' },
    );
  }

  deleteCredential(userId: string): Promise<boolean> {
    return this.#run('deleteCredential', async () => {
      const result = await this.#db.deleteFrom('user_credentials').where('user_id', '=', userId).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  // Egress log

  recordEgress(record: EgressRecord): Promise<void> {
    return this.#run(
      'recordEgress',
      async () => {
        await this.#db.insertInto('egress_log').values(fromEgressRecord(record)).execute();
      },
      { unique: 'an egress record with this id already exists' },
    );
  }

  listEgress(conversationId: string, options: { limit?: number } = {}): Promise<EgressRecord[]> {
    return this.#run('listEgress', async () => {
      let query = this.#db
        .selectFrom('egress_log')
        .selectAll()
        .where('conversation_id', '=', conversationId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc');
      if (options.limit !== undefined) query = query.limit(options.limit);
      const rows = await query.execute();
      return rows.reverse().map(toEgressRecord);
    });
  }

  // Sandbox sessions

  startSandboxSession(session: { id: string; userId: string; conversationId: string; startedAt: string }): Promise<void> {
    return this.#run(
      'startSandboxSession',
      async () => {
        await this.#db
          .insertInto('sandbox_sessions')
          .values({ id: session.id, user_id: session.userId, conversation_id: session.conversationId, started_at: session.startedAt, ended_at: null })
          .execute();
      },
      { unique: 'a sandbox session with this id already exists', foreignKey: 'the user does not exist' },
    );
  }

  endSandboxSession(id: string, endedAt: string): Promise<void> {
    return this.#run('endSandboxSession', async () => {
      await this.#db.updateTable('sandbox_sessions').set({ ended_at: endedAt }).where('id', '=', id).where('ended_at', 'is', null).execute();
    });
  }

  endOpenSandboxSessions(endedAt: string): Promise<number> {
    return this.#run('endOpenSandboxSessions', async () => {
      const result = await this.#db.updateTable('sandbox_sessions').set({ ended_at: endedAt }).where('ended_at', 'is', null).executeTakeFirst();
      return Number(result.numUpdatedRows);
    });
  }

  listSandboxSessions(userId: string, from: string, to: string): Promise<SandboxSession[]> {
    return this.#run('listSandboxSessions', async () => {
      const rows = await this.#db
        .selectFrom('sandbox_sessions')
        .selectAll()
        .where('user_id', '=', userId)
        .where('started_at', '<', to)
        .where((eb) => eb.or([eb('ended_at', 'is', null), eb('ended_at', '>', from)]))
        .orderBy('started_at')
        .orderBy('id')
        .execute();
      return rows.map((row) => ({
        id: row.id,
        userId: row.user_id,
        conversationId: row.conversation_id,
        startedAt: row.started_at,
        endedAt: row.ended_at,
      }));
    });
  }

  // Platform settings

  getSetting(key: string): Promise<string | null> {
    return this.#run('getSetting', async () => {
      const row = await this.#db.selectFrom('platform_settings').select('value').where('key', '=', key).executeTakeFirst();
      return row?.value ?? null;
    });
  }

  putSetting(key: string, value: string): Promise<void> {
    return this.#run('putSetting', async () => {
      await this.#db
        .insertInto('platform_settings')
        .values({ key, value })
        .onConflict((conflict) => conflict.column('key').doUpdateSet({ value }))
        .execute();
    });
  }

  deleteSetting(key: string): Promise<boolean> {
    return this.#run('deleteSetting', async () => {
      const result = await this.#db.deleteFrom('platform_settings').where('key', '=', key).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  // Error handling

  async #run<T>(operation: string, action: () => Promise<T>, messages: ErrorMessages = {}): Promise<T> {
    try {
      return await action();
    } catch (error) {
      throw this.#wrap(operation, error, messages);
    }
  }

  /** Turns a driver error into an AppError once; the driver error stays reachable as `cause`. */
  #wrap(operation: string, error: unknown, messages: ErrorMessages = {}): AppError {
    if (error instanceof AppError) return error;
    const details = { backend: this.kind, operation };
    switch (this.#classifyError(error)) {
      case 'unique':
        return new AppError('CONFLICT', messages.unique ?? `${operation}: the record already exists`, details, {
          cause: error,
        });
      case 'foreign_key':
        return new AppError(
          'CONFLICT',
          messages.foreignKey ?? `${operation}: a referenced record is missing or still in use`,
          details,
          { cause: error },
        );
      case 'unavailable':
        return new AppError('STORE_UNAVAILABLE', 'the database is unavailable right now; try again shortly', details, { cause: error });
      case null:
        return new AppError('INTERNAL', `${this.kind} store: ${operation} failed`, details, { cause: error });
    }
  }
}

/** The row of a new, enabled user. */
function newUserRow(user: NewUser) {
  return {
    id: user.id,
    email: user.email,
    email_normalized: normalizeEmail(user.email),
    password_hash: user.passwordHash,
    role: user.role,
    disabled: 0,
    created_at: nowIso(),
  };
}
