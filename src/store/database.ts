import type { EgressRecord, ModelCredentialKind, Role, TurnStatus } from '../core/types.ts';

/**
 * The tables as stored: snake_case columns, JSON as text, timestamps as ISO-8601 text and
 * booleans as integer 0/1, so one schema serves SQLite and PostgreSQL alike.
 */
export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  invites: InvitesTable;
  agents: AgentsTable;
  conversations: ConversationsTable;
  turns: TurnsTable;
  events: EventsTable;
  usage_records: UsageRecordsTable;
  quota_overrides: QuotaOverridesTable;
  user_credentials: UserCredentialsTable;
  egress_log: EgressLogTable;
  sandbox_sessions: SandboxSessionsTable;
  platform_settings: PlatformSettingsTable;
  replicas: ReplicasTable;
  conversation_leases: ConversationLeasesTable;
  lease_history: LeaseHistoryTable;
  gateway_grants: GatewayGrantsTable;
  replica_tasks: ReplicaTasksTable;
  usage_totals: UsageTotalsTable;
  rate_limit_windows: RateLimitWindowsTable;
}

export interface UsersTable {
  id: string;
  email: string;
  /** The email lowercased: the unique key that makes emails case-insensitive. */
  email_normalized: string;
  password_hash: string;
  role: Role;
  disabled: number;
  created_at: string;
}

export interface SessionsTable {
  /** Hash of the cookie secret; the secret itself is never stored. */
  id_hash: string;
  user_id: string;
  created_at: string;
  expires_at: string;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

export interface InvitesTable {
  id: string;
  code_hash: string;
  email: string | null;
  created_by: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface AgentsTable {
  id: string;
  owner_id: string | null;
  name: string;
  description: string;
  instructions: string;
  model: string;
  /** JSON array of tool names. */
  allowed_tools: string;
  /** JSON array of tool names. */
  disallowed_tools: string;
  max_turns: number | null;
  memory_mb: number;
  cpus: number;
  turn_timeout_seconds: number;
  /** JSON array of domain patterns (migration 0002). */
  egress_domains: string;
  /** `default`, `runc` or `runsc` (migration 0003). */
  sandbox_runtime: string;
  created_at: string;
  updated_at: string;
}

export interface ConversationsTable {
  id: string;
  user_id: string;
  agent_id: string;
  title: string;
  claude_session_id: string | null;
  /** Migration 0005. */
  claude_resume_at: string | null;
  last_seq: number;
  created_at: string;
  updated_at: string;
}

export interface TurnsTable {
  id: string;
  conversation_id: string;
  /** 1, 2, 3… within the conversation: creation order even when timestamps tie. */
  position: number;
  status: TurnStatus;
  input: string;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  /** JSON TokenUsage. */
  usage: string | null;
  cost_usd: number | null;
  error: string | null;
}

export interface EventsTable {
  conversation_id: string;
  seq: number;
  turn_id: string | null;
  type: string;
  /** JSON EventData. */
  data: string;
  created_at: string;
}

export interface UsageRecordsTable {
  id: string;
  user_id: string;
  conversation_id: string;
  turn_id: string | null;
  /** Migration 0002; null on older records whose conversation is gone. */
  agent_id: string | null;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  created_at: string;
}

export interface QuotaOverridesTable {
  user_id: string;
  /** JSON Partial<QuotaLimits>: a present key replaces the default (null: unlimited). */
  limits: string;
  updated_at: string;
}

export interface UserCredentialsTable {
  user_id: string;
  kind: ModelCredentialKind;
  ciphertext: string;
  created_at: string;
  updated_at: string;
}

export interface EgressLogTable {
  id: string;
  conversation_id: string;
  user_id: string;
  sandbox_id: string;
  host: string;
  port: number;
  address: string | null;
  decision: EgressRecord['decision'];
  reason: string | null;
  created_at: string;
}

export interface SandboxSessionsTable {
  id: string;
  user_id: string;
  conversation_id: string;
  started_at: string;
  ended_at: string | null;
  /** The replica running the sandbox (migration 0007); null for older sessions and single-process servers. */
  replica_id: string | null;
}

/** Platform-wide settings (migration 0004); `first-admin` holds the id of the account that became the first admin. */
export interface PlatformSettingsTable {
  key: string;
  value: string;
}

/** Server processes as they last reported themselves (migration 0006). */
export interface ReplicasTable {
  id: string;
  version: string;
  url: string | null;
  hostname: string;
  pid: number;
  started_at: string;
  heartbeat_at: string;
  draining: number;
}

/** A conversation's lease (migration 0006); a released lease keeps its row, with no holder, so its token keeps growing. */
export interface ConversationLeasesTable {
  conversation_id: string;
  /** Null once released. */
  replica_id: string | null;
  /** The fencing token: one more at every change of holder. */
  token: number;
  expires_at: string;
  /** The holder before the current one took the lease (null when it was free), copied into lease_history. */
  previous_replica_id: string | null;
}

/** One row per token a conversation's lease was given under (migration 0006). */
export interface LeaseHistoryTable {
  conversation_id: string;
  token: number;
  replica_id: string;
  previous_replica_id: string | null;
  claimed_at: string;
}

/** A sandbox's gateway grant (migration 0008), keyed by the SHA-256 of its token; the token itself is never stored. */
export interface GatewayGrantsTable {
  token_hash: string;
  sandbox_id: string;
  user_id: string;
  conversation_id: string;
  agent_id: string | null;
  /** The replica that issued it and serves the sandbox's socket. */
  replica_id: string;
  /** The turn usage is attributed to; null between turns. */
  turn_id: string | null;
  /** JSON array of domain patterns. */
  egress_domains: string;
  created_at: string;
  revoked_at: string | null;
}

/** Work that one replica at a time does (migration 0008), held like a lease until `expires_at`. */
export interface ReplicaTasksTable {
  name: string;
  replica_id: string;
  expires_at: string;
}

/** Token sums per user, UTC day (YYYY-MM-DD) and model (migration 0007), kept with every usage record. */
export interface UsageTotalsTable {
  user_id: string;
  day: string;
  model: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/** One fixed-window rate-limit counter per key (migration 0007); `window_start` in epoch milliseconds. */
export interface RateLimitWindowsTable {
  key: string;
  window_start: number;
  count: number;
}
