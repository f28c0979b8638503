import type { ConversationEvent, EventData } from './events.ts';
import type {
  Agent,
  ApiToken,
  BrowserSession,
  Conversation,
  EgressRecord,
  Invite,
  QuotaOverride,
  Role,
  SandboxSession,
  StoredCredential,
  TokenUsage,
  Turn,
  TurnStatus,
  UsageRecord,
  User,
  UserWithPassword,
} from './types.ts';

export interface NewUser {
  id: string;
  email: string;
  passwordHash: string;
  role: Role;
}

export interface NewApiToken {
  id: string;
  userId: string;
  name: string;
  tokenHash: string;
  prefix: string;
  expiresAt: string | null;
}

export interface NewInvite {
  id: string;
  codeHash: string;
  email: string | null;
  createdBy: string;
  expiresAt: string;
}

export type AgentPatch = Partial<Omit<Agent, 'id' | 'ownerId' | 'createdAt' | 'updatedAt'>>;

/** A usage query: records of [from, to) (ISO timestamps), summed per distinct value of each grouping. */
export interface UsageQuery {
  userId?: string;
  from?: string;
  to?: string;
  groupBy: Array<'user' | 'day' | 'agent' | 'model'>;
}

/** One group of a usage query; a field is present only when grouped by it. */
export interface UsageAggregate {
  userId?: string;
  /** UTC day, YYYY-MM-DD. */
  day?: string;
  agentId?: string | null;
  model?: string;
  requests: number;
  usage: TokenUsage;
}

export interface TurnPatch {
  status?: TurnStatus;
  startedAt?: string | null;
  endedAt?: string | null;
  usage?: Turn['usage'];
  costUsd?: number | null;
  error?: string | null;
}

/**
 * Persistence for every record of the platform. Implemented once over a SQL query builder
 * and run on SQLite (default) and PostgreSQL; `store.contract.ts` holds the shared suite.
 * Methods never throw raw driver errors: a duplicate becomes AppError CONFLICT.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Applies pending migrations; safe to call on every start. */
  migrate(): Promise<void>;
  /** A cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;

  createUser(user: NewUser): Promise<User>;
  /**
   * Creates the user as the platform's first administrator, atomically with claiming that place: of any number of
   * concurrent calls exactly one succeeds; the others (and every later call) answer null and create nothing.
   */
  createFirstAdmin(user: Omit<NewUser, 'role'>): Promise<User | null>;
  countUsers(): Promise<number>;
  getUser(id: string): Promise<User | null>;
  getUserByEmail(email: string): Promise<UserWithPassword | null>;
  listUsers(): Promise<User[]>;
  updateUser(id: string, patch: { role?: Role; disabled?: boolean; passwordHash?: string }): Promise<User | null>;

  createSession(session: { idHash: string; userId: string; expiresAt: string }): Promise<void>;
  /** The session if it exists and has not expired. */
  getSession(idHash: string, now: string): Promise<BrowserSession | null>;
  deleteSession(idHash: string): Promise<void>;
  /** Ends every browser session of the user. */
  deleteUserSessions(userId: string): Promise<void>;

  createApiToken(token: NewApiToken): Promise<ApiToken>;
  /** The token if it exists, is not revoked and has not expired. */
  findLiveApiToken(tokenHash: string, now: string): Promise<ApiToken | null>;
  listApiTokens(userId: string): Promise<ApiToken[]>;
  /** Revokes the user's token; false when the user has no such live token. */
  revokeApiToken(userId: string, tokenId: string, now: string): Promise<boolean>;
  touchApiToken(tokenId: string, now: string): Promise<void>;

  createInvite(invite: NewInvite): Promise<Invite>;
  /**
   * Marks an unused, unexpired invite as used and returns it; null when there is none. An invite issued for an
   * email is consumed only by that (normalized) email, so a wrong guess does not burn it.
   */
  consumeInvite(codeHash: string, email: string, now: string): Promise<Invite | null>;

  /** Inserts or replaces a built-in agent (ownerId null) by id. */
  upsertAgent(agent: Agent): Promise<Agent>;
  createAgent(agent: Agent): Promise<Agent>;
  getAgent(id: string): Promise<Agent | null>;
  /** The user's own agents followed by the built-in ones. */
  listAgents(ownerId: string): Promise<Agent[]>;
  updateAgent(id: string, patch: AgentPatch, now: string): Promise<Agent | null>;
  deleteAgent(id: string): Promise<boolean>;
  countConversationsUsingAgent(agentId: string): Promise<number>;

  createConversation(conversation: { id: string; userId: string; agentId: string; title: string }): Promise<Conversation>;
  getConversation(id: string): Promise<Conversation | null>;
  /** The user's conversations, most recently updated first. */
  listConversations(userId: string): Promise<Conversation[]>;
  updateConversation(id: string, patch: { title?: string; claudeSessionId?: string | null; claudeResumeAt?: string | null }): Promise<Conversation | null>;
  /** Deletes the conversation with its turns and events. */
  deleteConversation(id: string): Promise<boolean>;

  createTurn(turn: { id: string; conversationId: string; input: string }): Promise<Turn>;
  getTurn(id: string): Promise<Turn | null>;
  /** Turns of a conversation in creation order. */
  listTurns(conversationId: string): Promise<Turn[]>;
  /** Turns in any of the given states, across all conversations (for start-up recovery). */
  listTurnsByStatus(statuses: TurnStatus[]): Promise<Turn[]>;
  updateTurn(id: string, patch: TurnPatch): Promise<Turn | null>;

  /** Appends an event with the conversation's next sequence number, atomically. */
  appendEvent(conversationId: string, data: EventData): Promise<ConversationEvent>;
  /** Events with seq > afterSeq, in order, at most `limit`. */
  listEvents(conversationId: string, options?: { afterSeq?: number; limit?: number }): Promise<ConversationEvent[]>;

  recordUsage(record: UsageRecord): Promise<void>;
  listUsage(filter: { userId?: string; conversationId?: string; turnId?: string }): Promise<UsageRecord[]>;
  /** Token sums per group, ordered by the grouping columns. */
  aggregateUsage(query: UsageQuery): Promise<UsageAggregate[]>;

  /** The user's quota override, or null when the default applies. */
  getQuotaOverride(userId: string): Promise<QuotaOverride | null>;
  listQuotaOverrides(): Promise<QuotaOverride[]>;
  /** Inserts or replaces the user's override. */
  putQuotaOverride(override: QuotaOverride): Promise<QuotaOverride>;
  /** false when the user had none. */
  deleteQuotaOverride(userId: string): Promise<boolean>;

  getCredential(userId: string): Promise<StoredCredential | null>;
  /** Inserts or replaces the user's credential, keeping its creation time on replacement. */
  putCredential(credential: Omit<StoredCredential, 'createdAt'>): Promise<StoredCredential>;
  deleteCredential(userId: string): Promise<boolean>;

  recordEgress(record: EgressRecord): Promise<void>;
  /** A conversation's egress log in order, at most `limit` (newest kept when cut). */
  listEgress(conversationId: string, options?: { limit?: number }): Promise<EgressRecord[]>;

  startSandboxSession(session: { id: string; userId: string; conversationId: string; startedAt: string }): Promise<void>;
  endSandboxSession(id: string, endedAt: string): Promise<void>;
  /** Ends every session still open (after a crash); returns how many. */
  endOpenSandboxSessions(endedAt: string): Promise<number>;
  /** The user's sessions that overlap [from, to), open ones included. */
  listSandboxSessions(userId: string, from: string, to: string): Promise<SandboxSession[]>;

  /** A platform-wide setting's value (table platform_settings), or null when unset. */
  getSetting(key: string): Promise<string | null>;
  /** Inserts or replaces a platform-wide setting. */
  putSetting(key: string, value: string): Promise<void>;
  /** false when it was unset. */
  deleteSetting(key: string): Promise<boolean>;
}
