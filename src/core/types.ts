/** Domain records as the services see them. Timestamps are ISO-8601 strings. */

export type Role = 'admin' | 'user';

export interface User {
  id: string;
  email: string;
  role: Role;
  disabled: boolean;
  createdAt: string;
}

export interface UserWithPassword extends User {
  passwordHash: string;
}

export interface BrowserSession {
  id: string;
  userId: string;
  createdAt: string;
  expiresAt: string;
}

export interface ApiToken {
  id: string;
  userId: string;
  name: string;
  /** The first characters of the token, shown in listings so users can tell tokens apart. */
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

export interface Invite {
  id: string;
  email: string | null;
  createdBy: string;
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
}

export interface AgentLimits {
  /** Memory limit of the sandbox, MiB. */
  memoryMb: number;
  /** CPU limit of the sandbox, in cores (fractions allowed). */
  cpus: number;
  /** Wall-time deadline of one turn, seconds. */
  turnTimeoutSeconds: number;
}

export interface AgentDefinition {
  name: string;
  description: string;
  /** Appended to Claude Code's system prompt. */
  instructions: string;
  /** A full model id (aliases drift between CLI versions). */
  model: string;
  allowedTools: string[];
  disallowedTools: string[];
  maxTurns: number | null;
  limits: AgentLimits;
}

export interface Agent extends AgentDefinition {
  id: string;
  /** null for built-in agents, which every user can read and run. */
  ownerId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Conversation {
  id: string;
  userId: string;
  agentId: string;
  title: string;
  /** The Claude Code session id, once the CLI has reported it. */
  claudeSessionId: string | null;
  /** Sequence number of the last event appended. */
  lastSeq: number;
  createdAt: string;
  updatedAt: string;
}

export type TurnStatus = 'queued' | 'running' | 'completed' | 'failed' | 'interrupted' | 'timed_out';

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheCreationInputTokens: number;
  cacheReadInputTokens: number;
}

export interface Turn {
  id: string;
  conversationId: string;
  status: TurnStatus;
  input: string;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  usage: TokenUsage | null;
  costUsd: number | null;
  error: string | null;
}

/** One model request metered by the gateway. */
export interface UsageRecord {
  id: string;
  userId: string;
  conversationId: string;
  turnId: string | null;
  model: string;
  usage: TokenUsage;
  createdAt: string;
}
