import { Kysely, Migrator, sql, type Dialect, type RawBuilder, type Selectable, type Transaction } from 'kysely';
import { nowIso } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { ConversationEvent, EventData } from '../core/events.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type {
  AgentPatch,
  ConversationLease,
  Fence,
  LeaseChange,
  NewApiToken,
  NewGatewayGrant,
  NewInvite,
  NewSandboxSession,
  NewUser,
  RateLimitCount,
  ReplicaRecord,
  Store,
  StoreNotifications,
  StoredGatewayGrant,
  TurnPatch,
  UsageAggregate,
  UsageQuery,
} from '../core/store.ts';
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
  ConversationLeasesTable,
  ConversationsTable,
  Database,
  GatewayGrantsTable,
  QuotaOverridesTable,
  ReplicasTable,
  TurnsTable,
  UserCredentialsTable,
  UsersTable,
} from './database.ts';
import { migrationProvider } from './migrations/index.ts';
import { LocalNotifications, type NotificationBackend } from './notifications.ts';
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
  /** Builds the notifications over the store's own Kysely; default: within this process only. */
  notifications?: (db: Kysely<Database>) => NotificationBackend;
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

function toReplica(row: Selectable<ReplicasTable>): ReplicaRecord {
  return {
    id: row.id,
    version: row.version,
    url: row.url,
    hostname: row.hostname,
    pid: Number(row.pid),
    startedAt: row.started_at,
    heartbeatAt: row.heartbeat_at,
    draining: row.draining !== 0,
  };
}

/** Only for rows with a holder: a released lease (replica_id null) is no lease. */
function toLease(row: Pick<Selectable<ConversationLeasesTable>, 'conversation_id' | 'replica_id' | 'token' | 'expires_at'>): ConversationLease {
  return { conversationId: row.conversation_id, replicaId: row.replica_id ?? '', token: Number(row.token), expiresAt: row.expires_at };
}

function toGatewayGrant(row: Selectable<GatewayGrantsTable>): StoredGatewayGrant {
  return {
    tokenHash: row.token_hash,
    sandboxId: row.sandbox_id,
    userId: row.user_id,
    conversationId: row.conversation_id,
    agentId: row.agent_id,
    replicaId: row.replica_id,
    turnId: row.turn_id,
    egressDomains: JSON.parse(row.egress_domains) as string[],
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
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
  readonly #notifications: NotificationBackend;
  readonly notifications: StoreNotifications;

  constructor(options: SqlStoreOptions) {
    this.kind = options.kind;
    this.#db = new Kysely<Database>({ dialect: options.dialect });
    this.#classifyError = options.classifyError;
    this.#logger = options.logger ?? silentLogger;
    const backend = options.notifications?.(this.#db) ?? new LocalNotifications(this.#logger);
    this.#notifications = backend;
    // Only the public part, with wake's driver errors wrapped like every other operation's.
    this.notifications = {
      onEventAppended: (listener) => backend.onEventAppended(listener),
      onWake: (listener) => backend.onWake(listener),
      onGap: (listener) => backend.onGap(listener),
      wake: (conversationId) => this.#run('wake', () => backend.wake(conversationId)),
    };
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
    return this.#run('close', async () => {
      await this.#notifications.close();
      await this.#db.destroy();
    });
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
        await transaction.deleteFrom('conversation_leases').where('conversation_id', '=', id).execute();
        await transaction.deleteFrom('lease_history').where('conversation_id', '=', id).execute();
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

  updateTurn(id: string, patch: TurnPatch, fence?: Fence): Promise<Turn | null> {
    if (fence !== undefined) return this.#run('updateTurn', () => this.#updateFencedTurn(id, patch, fence));
    return this.#run('updateTurn', async () => {
      const columns = turnColumns(patch);
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

  #updateFencedTurn(id: string, patch: TurnPatch, fence: Fence): Promise<Turn | null> {
    return this.#db.transaction().execute(async (transaction) => {
      const turn = await transaction.selectFrom('turns').select('conversation_id').where('id', '=', id).executeTakeFirst();
      if (turn === undefined) return null;
      await this.#checkFence(transaction, turn.conversation_id, fence);
      const columns = turnColumns(patch);
      const row =
        Object.keys(columns).length === 0
          ? await transaction.selectFrom('turns').selectAll().where('id', '=', id).executeTakeFirst()
          : await transaction.updateTable('turns').set(columns).where('id', '=', id).returningAll().executeTakeFirst();
      return row === undefined ? null : toTurn(row);
    });
  }

  // Events

  async appendEvent(conversationId: string, data: EventData, fence?: Fence): Promise<ConversationEvent> {
    const event = await this.#run('appendEvent', () =>
      this.#db.transaction().execute(async (transaction) => {
        if (fence !== undefined) await this.#checkFence(transaction, conversationId, fence);
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
        await this.#notifications.eventAppending(transaction, conversationId, row.seq);
        return toEvent(row);
      }),
    );
    this.#notifications.eventAppended(event.conversationId, event.seq);
    return event;
  }

  /**
   * Throws LEASE_LOST unless the conversation's lease is the fence's (same holder, same token). On PostgreSQL the row
   * is share-locked until the transaction ends, so a takeover waits for this write instead of slipping in before it
   * commits; SQLite runs one writer at a time anyway.
   */
  async #checkFence(transaction: Transaction<Database>, conversationId: string, fence: Fence): Promise<void> {
    const lease = await transaction
      .selectFrom('conversation_leases')
      .select(['replica_id', 'token'])
      .where('conversation_id', '=', conversationId)
      .$if(this.kind === 'postgres', (query) => query.forShare())
      .executeTakeFirst();
    if (lease === undefined || lease.replica_id !== fence.replicaId || Number(lease.token) !== fence.token) {
      throw new AppError('LEASE_LOST', 'this replica no longer holds the conversation', {
        conversationId,
        replicaId: fence.replicaId,
        token: fence.token,
      });
    }
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
      () =>
        this.#db.transaction().execute(async (transaction) => {
          await transaction.insertInto('usage_records').values(fromUsageRecord(record)).execute();
          // The day's totals grow in the same transaction: a quota check never sees the record without them.
          await addToUsageTotals(transaction, record);
        }),
      { unique: 'a usage record with this id already exists', foreignKey: 'the user does not exist' },
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

  // Shared limits (docs/decisions/0014-shared-limits.md)

  usageTotals(userId: string, fromDay: string): Promise<UsageAggregate[]> {
    return this.#run('usageTotals', async () => {
      const rows = await this.#db
        .selectFrom('usage_totals')
        .selectAll()
        .where('user_id', '=', userId)
        .where('day', '>=', fromDay)
        .orderBy('day')
        .orderBy('model')
        .execute();
      return rows.map((row) => ({
        day: row.day,
        model: row.model,
        requests: Number(row.requests),
        usage: {
          inputTokens: Number(row.input_tokens),
          outputTokens: Number(row.output_tokens),
          cacheCreationInputTokens: Number(row.cache_creation_input_tokens),
          cacheReadInputTokens: Number(row.cache_read_input_tokens),
        },
      }));
    });
  }

  startSandboxSessionWithin(session: NewSandboxSession, limit: number | null): Promise<{ started: boolean; open: number }> {
    return this.#run(
      'startSandboxSessionWithin',
      () =>
        this.#db.transaction().execute(async (transaction) => {
          // Starts for one user are counted one at a time: on PostgreSQL each waits here for the user's row, which the
          // one before holds until it commits (no key update, so the foreign-key checks of other tables go on). SQLite
          // runs one transaction at a time anyway.
          if (this.kind === 'postgres') {
            const user = await transaction.selectFrom('users').select('id').where('id', '=', session.userId).forNoKeyUpdate().executeTakeFirst();
            if (user === undefined) throw new AppError('CONFLICT', 'the user does not exist', { backend: this.kind, operation: 'startSandboxSessionWithin' });
          }
          const row = await transaction
            .selectFrom('sandbox_sessions')
            .select((eb) => eb.fn.countAll<number | string>().as('count'))
            .where('user_id', '=', session.userId)
            .where('ended_at', 'is', null)
            .executeTakeFirstOrThrow();
          const open = Number(row.count);
          if (limit !== null && open >= limit) return { started: false, open };
          await transaction
            .insertInto('sandbox_sessions')
            .values({
              id: session.id,
              user_id: session.userId,
              conversation_id: session.conversationId,
              started_at: session.startedAt,
              ended_at: null,
              replica_id: session.replicaId,
            })
            .execute();
          return { started: true, open };
        }),
      { unique: 'a sandbox session with this id already exists', foreignKey: 'the user does not exist' },
    );
  }

  endSandboxSessionsOfReplica(replicaId: string, endedAt: string): Promise<number> {
    return this.#run('endSandboxSessionsOfReplica', async () => {
      const result = await this.#db
        .updateTable('sandbox_sessions')
        .set({ ended_at: endedAt })
        .where('ended_at', 'is', null)
        .where('replica_id', '=', replicaId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    });
  }

  endSandboxSessionsOfStoppedReplicas(heartbeatBefore: string, now: string): Promise<number> {
    return this.#run('endSandboxSessionsOfStoppedReplicas', async () => {
      // A session ends when its replica was last heard of, never before it started.
      const lastHeard = sql<string>`coalesce((
        select case when replicas.heartbeat_at > sandbox_sessions.started_at then replicas.heartbeat_at else sandbox_sessions.started_at end
        from replicas where replicas.id = sandbox_sessions.replica_id
      ), ${now})`;
      const result = await this.#db
        .updateTable('sandbox_sessions')
        .set({ ended_at: lastHeard })
        .where('ended_at', 'is', null)
        .where('replica_id', 'is not', null)
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('replicas')
                .select('replicas.id')
                .whereRef('replicas.id', '=', 'sandbox_sessions.replica_id')
                .where('replicas.heartbeat_at', '>=', heartbeatBefore),
            ),
          ),
        )
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    });
  }

  hitRateLimit(key: string, windowMs: number, now: number): Promise<RateLimitCount> {
    return this.#run('hitRateLimit', async () => {
      // One statement: the insert (first request) or the update of the row under its lock, so concurrent requests on
      // any replica are counted one after another. Both SET expressions read the row as it was before.
      const over = sql<boolean>`rate_limit_windows.window_start <= ${now - windowMs}`;
      const row = await this.#db
        .insertInto('rate_limit_windows')
        .values({ key, window_start: now, count: 1 })
        .onConflict((conflict) =>
          conflict.column('key').doUpdateSet({
            count: sql<number>`case when ${over} then 1 else rate_limit_windows.count + 1 end`,
            window_start: sql<number>`case when ${over} then ${now} else rate_limit_windows.window_start end`,
          }),
        )
        .returning(['window_start', 'count'])
        .executeTakeFirstOrThrow();
      return { windowStart: Number(row.window_start), count: Number(row.count) };
    });
  }

  deleteRateLimitWindows(startedBefore: number): Promise<number> {
    return this.#run('deleteRateLimitWindows', async () => {
      const result = await this.#db.deleteFrom('rate_limit_windows').where('window_start', '<', startedBefore).executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }

  // Replicas

  registerReplica(replica: Omit<ReplicaRecord, 'heartbeatAt' | 'draining'>): Promise<void> {
    return this.#run('registerReplica', async () => {
      const row = {
        id: replica.id,
        version: replica.version,
        url: replica.url,
        hostname: replica.hostname,
        pid: replica.pid,
        started_at: replica.startedAt,
        heartbeat_at: replica.startedAt,
        draining: 0,
      };
      const { id: _id, ...changes } = row;
      await this.#db
        .insertInto('replicas')
        .values(row)
        .onConflict((conflict) => conflict.column('id').doUpdateSet(changes))
        .execute();
    });
  }

  heartbeatReplica(id: string, heartbeatAt: string, draining: boolean): Promise<boolean> {
    return this.#run('heartbeatReplica', async () => {
      const result = await this.#db
        .updateTable('replicas')
        .set({ heartbeat_at: heartbeatAt, draining: draining ? 1 : 0 })
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  listReplicas(): Promise<ReplicaRecord[]> {
    return this.#run('listReplicas', async () => {
      const rows = await this.#db.selectFrom('replicas').selectAll().orderBy('started_at').orderBy('id').execute();
      return rows.map(toReplica);
    });
  }

  deleteReplica(id: string): Promise<void> {
    return this.#run('deleteReplica', async () => {
      await this.#db.deleteFrom('replicas').where('id', '=', id).execute();
    });
  }

  // Conversation leases

  claimLease(conversationId: string, replicaId: string, now: string, expiresAt: string): Promise<ConversationLease | null> {
    return this.#run('claimLease', () =>
      this.#db.transaction().execute(async (transaction) => {
        // One statement decides, so concurrent claims cannot both win: the insert (no row yet) or the update of the
        // row (under its lock, re-checked against the latest version) happens for one claim only. The others find
        // a holder whose lease runs and get no row back. SET expressions all read the row as it was before.
        const sameHolder = sql<boolean>`conversation_leases.replica_id = excluded.replica_id`;
        const lease = await transaction
          .insertInto('conversation_leases')
          .values({ conversation_id: conversationId, replica_id: replicaId, token: 1, expires_at: expiresAt, previous_replica_id: null })
          .onConflict((conflict) =>
            conflict
              .column('conversation_id')
              .doUpdateSet({
                token: sql<number>`case when ${sameHolder} then conversation_leases.token else conversation_leases.token + 1 end`,
                previous_replica_id: sql<string | null>`case when ${sameHolder} then conversation_leases.previous_replica_id else conversation_leases.replica_id end`,
                replica_id: replicaId,
                expires_at: expiresAt,
              })
              .where((eb) =>
                eb.or([
                  eb('conversation_leases.replica_id', 'is', null),
                  eb('conversation_leases.replica_id', '=', replicaId),
                  eb('conversation_leases.expires_at', '<=', now),
                ]),
              ),
          )
          .returningAll()
          .executeTakeFirst()
          .catch((error: unknown) => {
            if (this.#classifyError(error) === 'foreign_key') throw new AppError('NOT_FOUND', 'conversation not found');
            throw error;
          });
        if (lease === undefined) return null;
        // A renewal leaves the token as it was, whose history row exists already; a new token gets its row.
        await transaction
          .insertInto('lease_history')
          .values({
            conversation_id: conversationId,
            token: lease.token,
            replica_id: replicaId,
            previous_replica_id: lease.previous_replica_id,
            claimed_at: now,
          })
          .onConflict((conflict) => conflict.columns(['conversation_id', 'token']).doNothing())
          .execute();
        return toLease(lease);
      }),
    );
  }

  renewLeases(replicaId: string, expiresAt: string): Promise<ConversationLease[]> {
    return this.#run('renewLeases', async () => {
      const rows = await this.#db
        .updateTable('conversation_leases')
        .set({ expires_at: expiresAt })
        .where('replica_id', '=', replicaId)
        .returningAll()
        .execute();
      return rows.map(toLease).sort((a, b) => (a.conversationId < b.conversationId ? -1 : a.conversationId > b.conversationId ? 1 : 0));
    });
  }

  releaseLease(fence: Fence & { conversationId: string }): Promise<boolean> {
    return this.#run('releaseLease', async () => {
      // The row stays, with no holder, so that the next holder's token is still one more than this one.
      const result = await this.#db
        .updateTable('conversation_leases')
        .set({ replica_id: null })
        .where('conversation_id', '=', fence.conversationId)
        .where('replica_id', '=', fence.replicaId)
        .where('token', '=', fence.token)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  getLease(conversationId: string): Promise<ConversationLease | null> {
    return this.#run('getLease', async () => {
      const row = await this.#db
        .selectFrom('conversation_leases')
        .selectAll()
        .where('conversation_id', '=', conversationId)
        .where('replica_id', 'is not', null)
        .executeTakeFirst();
      return row === undefined ? null : toLease(row);
    });
  }

  countLeasesByReplica(): Promise<Record<string, number>> {
    return this.#run('countLeasesByReplica', async () => {
      // Expired leases count too: until another replica takes one over, its holder may still be running the turn.
      const rows = await this.#db
        .selectFrom('conversation_leases')
        .select((eb) => ['replica_id', eb.fn.countAll<number | string>().as('count')])
        .where('replica_id', 'is not', null)
        .groupBy('replica_id')
        .execute();
      return Object.fromEntries(rows.map((row) => [row.replica_id ?? '', Number(row.count)]));
    });
  }

  listExpiredLeases(now: string): Promise<ConversationLease[]> {
    return this.#run('listExpiredLeases', async () => {
      const rows = await this.#db
        .selectFrom('conversation_leases')
        .selectAll()
        .where('replica_id', 'is not', null)
        .where('expires_at', '<=', now)
        .orderBy('expires_at')
        .orderBy('conversation_id')
        .execute();
      return rows.map(toLease);
    });
  }

  listUnownedQueuedConversations(now: string): Promise<string[]> {
    return this.#run('listUnownedQueuedConversations', async () => {
      const rows = await this.#db
        .selectFrom('turns')
        .leftJoin('conversation_leases', 'conversation_leases.conversation_id', 'turns.conversation_id')
        .select('turns.conversation_id')
        .where('turns.status', '=', 'queued')
        .where((eb) =>
          eb.or([
            eb('conversation_leases.replica_id', 'is', null),
            eb('conversation_leases.expires_at', '<=', now),
          ]),
        )
        .groupBy('turns.conversation_id')
        // The conversation waiting longest first.
        .orderBy((eb) => eb.fn.min('turns.created_at'))
        .orderBy('turns.conversation_id')
        .execute();
      return rows.map((row) => row.conversation_id);
    });
  }

  listLeaseHistory(conversationId: string): Promise<LeaseChange[]> {
    return this.#run('listLeaseHistory', async () => {
      const rows = await this.#db
        .selectFrom('lease_history')
        .selectAll()
        .where('conversation_id', '=', conversationId)
        .orderBy('token')
        .execute();
      return rows.map((row) => ({
        conversationId: row.conversation_id,
        token: Number(row.token),
        replicaId: row.replica_id,
        previousReplicaId: row.previous_replica_id,
        claimedAt: row.claimed_at,
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

  // Gateway grants and replica tasks

  createGatewayGrant(grant: NewGatewayGrant): Promise<StoredGatewayGrant> {
    return this.#run(
      'createGatewayGrant',
      async () => {
        const row = await this.#db
          .insertInto('gateway_grants')
          .values({
            token_hash: grant.tokenHash,
            sandbox_id: grant.sandboxId,
            user_id: grant.userId,
            conversation_id: grant.conversationId,
            agent_id: grant.agentId,
            replica_id: grant.replicaId,
            turn_id: null,
            egress_domains: JSON.stringify(grant.egressDomains),
            created_at: grant.createdAt,
            revoked_at: null,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return toGatewayGrant(row);
      },
      { unique: 'a gateway grant with this token hash already exists', foreignKey: 'the conversation does not exist' },
    );
  }

  getGatewayGrant(tokenHash: string): Promise<StoredGatewayGrant | null> {
    return this.#run('getGatewayGrant', async () => {
      const row = await this.#db.selectFrom('gateway_grants').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
      return row === undefined ? null : toGatewayGrant(row);
    });
  }

  updateGatewayGrant(tokenHash: string, patch: { turnId?: string | null; egressDomains?: readonly string[] }): Promise<boolean> {
    return this.#run('updateGatewayGrant', async () => {
      const columns: Partial<GatewayGrantsTable> = {};
      if (patch.turnId !== undefined) columns.turn_id = patch.turnId;
      if (patch.egressDomains !== undefined) columns.egress_domains = JSON.stringify(patch.egressDomains);
      // An empty patch still answers whether the grant is live.
      if (Object.keys(columns).length === 0) {
        const row = await this.#db
          .selectFrom('gateway_grants')
          .select('token_hash')
          .where('token_hash', '=', tokenHash)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        return row !== undefined;
      }
      const result = await this.#db
        .updateTable('gateway_grants')
        .set(columns)
        .where('token_hash', '=', tokenHash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  revokeGatewayGrant(tokenHash: string, now: string): Promise<boolean> {
    return this.#run('revokeGatewayGrant', async () => {
      const result = await this.#db
        .updateTable('gateway_grants')
        .set({ revoked_at: now })
        .where('token_hash', '=', tokenHash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  deleteStaleGatewayGrants(options: { replicaSeenBefore: string; revokedBefore: string }): Promise<number> {
    return this.#run('deleteStaleGatewayGrants', async () => {
      const result = await this.#db
        .deleteFrom('gateway_grants')
        .where((eb) =>
          eb.or([
            eb.and([eb('revoked_at', 'is not', null), eb('revoked_at', '<', options.revokedBefore)]),
            // Nobody serves the sandbox's socket any more: its replica is gone, has not been heard from, or started
            // after the grant was issued (an earlier process under the same id issued it).
            eb.not(
              eb.exists(
                eb
                  .selectFrom('replicas')
                  .select('replicas.id')
                  .whereRef('replicas.id', '=', 'gateway_grants.replica_id')
                  .where('replicas.heartbeat_at', '>=', options.replicaSeenBefore)
                  .whereRef('replicas.started_at', '<=', 'gateway_grants.created_at'),
              ),
            ),
          ]),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }

  claimTask(name: string, replicaId: string, now: string, expiresAt: string): Promise<boolean> {
    return this.#run('claimTask', async () => {
      // One statement decides, as in claimLease: the insert, or the update of a row that is expired or already the
      // claimant's (re-checked under the row's lock on PostgreSQL), happens for one claimant only.
      const row = await this.#db
        .insertInto('replica_tasks')
        .values({ name, replica_id: replicaId, expires_at: expiresAt })
        .onConflict((conflict) =>
          conflict
            .column('name')
            .doUpdateSet({ replica_id: replicaId, expires_at: expiresAt })
            .where((eb) => eb.or([eb('replica_tasks.replica_id', '=', replicaId), eb('replica_tasks.expires_at', '<=', now)])),
        )
        .returning('name')
        .executeTakeFirst();
      return row !== undefined;
    });
  }

  releaseTask(name: string, replicaId: string): Promise<boolean> {
    return this.#run('releaseTask', async () => {
      const result = await this.#db.deleteFrom('replica_tasks').where('name', '=', name).where('replica_id', '=', replicaId).executeTakeFirst();
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

/** Adds a usage record to its user's totals for its UTC day and model (table usage_totals). */
async function addToUsageTotals(transaction: Transaction<Database>, record: UsageRecord): Promise<void> {
  const { usage } = record;
  await transaction
    .insertInto('usage_totals')
    .values({
      user_id: record.userId,
      day: record.createdAt.slice(0, 10),
      model: record.model,
      requests: 1,
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      cache_creation_input_tokens: usage.cacheCreationInputTokens,
      cache_read_input_tokens: usage.cacheReadInputTokens,
    })
    .onConflict((conflict) =>
      conflict.columns(['user_id', 'day', 'model']).doUpdateSet((eb) => ({
        requests: eb('usage_totals.requests', '+', 1),
        input_tokens: eb('usage_totals.input_tokens', '+', eb.ref('excluded.input_tokens')),
        output_tokens: eb('usage_totals.output_tokens', '+', eb.ref('excluded.output_tokens')),
        cache_creation_input_tokens: eb('usage_totals.cache_creation_input_tokens', '+', eb.ref('excluded.cache_creation_input_tokens')),
        cache_read_input_tokens: eb('usage_totals.cache_read_input_tokens', '+', eb.ref('excluded.cache_read_input_tokens')),
      })),
    )
    .execute();
}

/** The columns a turn patch sets. */
function turnColumns(patch: TurnPatch): Partial<TurnsTable> {
  const columns: Partial<TurnsTable> = {};
  if (patch.status !== undefined) columns.status = patch.status;
  if (patch.startedAt !== undefined) columns.started_at = patch.startedAt;
  if (patch.endedAt !== undefined) columns.ended_at = patch.endedAt;
  if (patch.usage !== undefined) columns.usage = patch.usage === null ? null : JSON.stringify(patch.usage);
  if (patch.costUsd !== undefined) columns.cost_usd = patch.costUsd;
  if (patch.error !== undefined) columns.error = patch.error;
  return columns;
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
