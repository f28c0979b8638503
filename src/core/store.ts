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

/** A server process of the platform, as it last reported itself (table replicas). */
export interface ReplicaRecord {
  id: string;
  /** The platform version it runs (package.json). */
  version: string;
  /** Where other replicas reach it (its internal http://host:port), or null. */
  url: string | null;
  /** The host it runs on and its process id, for administrators. */
  hostname: string;
  pid: number;
  startedAt: string;
  heartbeatAt: string;
  /** It is shutting down: it takes no new turns. */
  draining: boolean;
}

/**
 * The right of one replica to run a conversation's turns (table conversation_leases). `token` is the fencing token:
 * it grows by one every time the lease changes hands, never when its holder renews it.
 */
export interface ConversationLease {
  conversationId: string;
  replicaId: string;
  token: number;
  expiresAt: string;
}

/** One change of a lease's holder, kept for audit and tests (table lease_history). */
export interface LeaseChange {
  conversationId: string;
  token: number;
  replicaId: string;
  /** The holder before this claim, or null when the lease was free. */
  previousReplicaId: string | null;
  claimedAt: string;
}

/**
 * A sandbox's gateway grant as stored (table gateway_grants), so that any replica can serve the sandbox's model and
 * egress traffic. Keyed by the SHA-256 of the sandbox token: the token itself is never stored.
 */
export interface StoredGatewayGrant {
  tokenHash: string;
  sandboxId: string;
  userId: string;
  conversationId: string;
  agentId: string | null;
  /** The replica that issued it and serves the sandbox's socket. */
  replicaId: string;
  /** The turn usage is attributed to; null between turns. */
  turnId: string | null;
  egressDomains: string[];
  createdAt: string;
  revokedAt: string | null;
}

export type NewGatewayGrant = Omit<StoredGatewayGrant, 'turnId' | 'revokedAt'>;

/** Proof that the writer holds the conversation's lease; a write carrying a stale one fails with LEASE_LOST. */
export interface Fence {
  replicaId: string;
  token: number;
}

/** What the store tells every replica's process (PostgreSQL LISTEN/NOTIFY; in-process on SQLite). */
export interface StoreNotifications {
  /** Called for every event appended from now on, by any replica, after its commit. Returns the unsubscribe function. */
  onEventAppended(listener: (conversationId: string, seq: number) => void): () => void;
  /** Called for `wake(conversationId)` from any replica: the conversation has queued turns for its lease holder. */
  onWake(listener: (conversationId: string) => void): () => void;
  wake(conversationId: string): Promise<void>;
  /**
   * Called when notifications may have been missed (the listening connection was lost and opened again, or the
   * server's notification queue overflowed): listeners should re-read what they follow.
   */
  onGap(listener: () => void): () => void;
}

/** A sandbox session to record; `replicaId`: the replica that runs the sandbox (null: a single-process server). */
export interface NewSandboxSession {
  id: string;
  userId: string;
  conversationId: string;
  startedAt: string;
  replicaId: string | null;
}

/** A rate-limit key's window after counting one request: its start (epoch ms) and the requests counted in it. */
export interface RateLimitCount {
  windowStart: number;
  count: number;
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
  /** With `fence`, only while that lease is the turn's conversation's current one (LEASE_LOST otherwise). */
  updateTurn(id: string, patch: TurnPatch, fence?: Fence): Promise<Turn | null>;

  /**
   * Appends an event with the conversation's next sequence number, atomically. With `fence`, only while that lease is
   * the conversation's current one (same replica and token; LEASE_LOST otherwise), checked in the same transaction.
   */
  appendEvent(conversationId: string, data: EventData, fence?: Fence): Promise<ConversationEvent>;
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

  // Shared limits (docs/decisions/0014-shared-limits.md): quotas and rate limits read from here hold across replicas.
  /** The user's token sums per UTC day and model, from `fromDay` (YYYY-MM-DD) on; kept as usage is recorded. */
  usageTotals(userId: string, fromDay: string): Promise<UsageAggregate[]>;
  /**
   * Starts a sandbox session unless the user has `limit` open ones already (null: no limit), atomically across
   * replicas: concurrent calls for one user are counted one after another. `open`: how many were open before.
   */
  startSandboxSessionWithin(session: NewSandboxSession, limit: number | null): Promise<{ started: boolean; open: number }>;
  /** Ends the open sessions the replica recorded (left by its previous process); returns how many. */
  endSandboxSessionsOfReplica(replicaId: string, endedAt: string): Promise<number>;
  /**
   * Ends the open sessions of replicas that stopped: whose row is gone, or whose heartbeat is older than
   * `heartbeatBefore`. Each ends at its replica's last heartbeat (`now` when the row is gone). Returns how many.
   */
  endSandboxSessionsOfStoppedReplicas(heartbeatBefore: string, now: string): Promise<number>;
  /**
   * Counts one request against the key's fixed window, atomically across replicas: the window starts at the key's first
   * request and lasts `windowMs`; a request at or after its end starts the next one. Times in epoch milliseconds.
   */
  hitRateLimit(key: string, windowMs: number, now: number): Promise<RateLimitCount>;
  /** Deletes the counters of windows that started before `startedBefore`; returns how many. */
  deleteRateLimitWindows(startedBefore: number): Promise<number>;

  /** Inserts or replaces the replica's row, with its heartbeat at `startedAt`. */
  registerReplica(replica: Omit<ReplicaRecord, 'heartbeatAt' | 'draining'>): Promise<void>;
  /** Sets the replica's heartbeat (and draining flag); false when its row is gone (it was declared dead and removed). */
  heartbeatReplica(id: string, heartbeatAt: string, draining: boolean): Promise<boolean>;
  listReplicas(): Promise<ReplicaRecord[]>;
  deleteReplica(id: string): Promise<void>;

  /**
   * Claims the conversation's lease for the replica, atomically: when the lease is free, expired at `now`, or already
   * the replica's (then it is renewed and keeps its token). A change of holder raises the token by one and is recorded
   * in the lease history. Null when another replica holds a lease that has not expired.
   */
  claimLease(conversationId: string, replicaId: string, now: string, expiresAt: string): Promise<ConversationLease | null>;
  /** Extends every lease the replica holds to `expiresAt`; returns them (the ones it still holds). */
  renewLeases(replicaId: string, expiresAt: string): Promise<ConversationLease[]>;
  /** Gives the lease up; false when it is no longer the replica's with that token. */
  releaseLease(fence: Fence & { conversationId: string }): Promise<boolean>;
  getLease(conversationId: string): Promise<ConversationLease | null>;
  /** How many leases each replica holds, by replica id. */
  countLeasesByReplica(): Promise<Record<string, number>>;
  /** Leases that expired before `now`, oldest first. */
  listExpiredLeases(now: string): Promise<ConversationLease[]>;
  /** Conversations with queued turns whose lease is free or expired at `now` (nobody is about to run them). */
  listUnownedQueuedConversations(now: string): Promise<string[]>;
  /** The conversation's changes of lease holder, oldest first. */
  listLeaseHistory(conversationId: string): Promise<LeaseChange[]>;
  /** Cross-replica notifications; on SQLite they reach this process only (SQLite runs one replica). */
  readonly notifications: StoreNotifications;

  /** A platform-wide setting's value (table platform_settings), or null when unset. */
  getSetting(key: string): Promise<string | null>;
  /** Inserts or replaces a platform-wide setting. */
  putSetting(key: string, value: string): Promise<void>;
  /** false when it was unset. */
  deleteSetting(key: string): Promise<boolean>;

  // Gateway grants and replica tasks (migration 0008)

  /** Stores a new, live grant with no turn; CONFLICT when a grant with its token hash exists. */
  createGatewayGrant(grant: NewGatewayGrant): Promise<StoredGatewayGrant>;
  /** The grant with this token hash, revoked or not; null when there is none. */
  getGatewayGrant(tokenHash: string): Promise<StoredGatewayGrant | null>;
  /** Sets a live grant's turn and/or egress domains; false when it is revoked or gone. */
  updateGatewayGrant(tokenHash: string, patch: { turnId?: string | null; egressDomains?: readonly string[] }): Promise<boolean>;
  /** Marks the grant revoked at `now`; false when it already was, or is gone. */
  revokeGatewayGrant(tokenHash: string, now: string): Promise<boolean>;
  /**
   * Deletes the grants no replica serves any more (their replica's row is gone, its heartbeat is older than
   * `replicaSeenBefore`, or it started after the grant was issued: an earlier process under the same id issued it)
   * and those revoked before `revokedBefore`; returns how many.
   */
  deleteStaleGatewayGrants(options: { replicaSeenBefore: string; revokedBefore: string }): Promise<number>;
  /**
   * Claims the named periodic task for the replica until `expiresAt`, atomically like a lease: true when the task was
   * free, expired at `now`, or already the replica's (then renewed). Of concurrent claimants at most one gets it.
   */
  claimTask(name: string, replicaId: string, now: string, expiresAt: string): Promise<boolean>;
  /** Gives the task up so another replica may take it at once; false when the replica did not hold it. */
  releaseTask(name: string, replicaId: string): Promise<boolean>;
}
