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
}

/** Platform-wide settings (migration 0004); `first-admin` holds the id of the account that became the first admin. */
export interface PlatformSettingsTable {
  key: string;
  value: string;
}
