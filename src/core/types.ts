/** Domain records as the services see them. Timestamps are ISO-8601 strings. */
import type { SandboxRuntime } from './sandbox.ts';

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
  /**
   * Domains the agent's sandbox may reach through the gateway's egress proxy: `host`, `*.host` (any subdomain)
   * or either with `:port` (default ports 443 and 80). Empty: no egress at all.
   */
  egressDomains: string[];
  /**
   * The Docker runtime the agent's sandboxes run under: `runc`, gVisor's `runsc` (a kernel of its own between the
   * agent and the host), or `default`, the installation's. Only the Docker backend has a choice.
   */
  sandboxRuntime: SandboxRuntimeChoice;
}

export type SandboxRuntimeChoice = 'default' | SandboxRuntime;

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
  /**
   * The assistant message of that session that the next CLI continues from (`--resume-session-at`): the end of the
   * last turn kept. Null: the whole session.
   */
  claudeResumeAt: string | null;
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
  /** The agent the conversation ran; null for records made before agents were recorded. */
  agentId: string | null;
  model: string;
  usage: TokenUsage;
  createdAt: string;
}

/** Limits on one user's consumption, each null when unlimited. Periods are UTC calendar days and months. */
export interface QuotaLimits {
  /** Model tokens of every kind (input, output, cache write, cache read). */
  tokensPerDay: number | null;
  tokensPerMonth: number | null;
  /** Estimated cost from the configured price table, USD. */
  costPerDayUsd: number | null;
  costPerMonthUsd: number | null;
  concurrentSandboxes: number | null;
  sandboxHoursPerMonth: number | null;
}

export type QuotaName = keyof QuotaLimits;

/** An administrator's override for one user: the limits named replace the default, the others follow it. */
export interface QuotaOverride {
  userId: string;
  limits: Partial<QuotaLimits>;
  updatedAt: string;
}

export type ModelCredentialKind = 'api-key' | 'oauth-token';

/** A user's own model credential as stored: only ever encrypted. */
export interface StoredCredential {
  userId: string;
  kind: ModelCredentialKind;
  /** Authenticated ciphertext (see src/gateway/credential-cipher.ts); never leaves the server. */
  ciphertext: string;
  createdAt: string;
  updatedAt: string;
}

/** One connection attempt through a sandbox's egress proxy, allowed or not. */
export interface EgressRecord {
  id: string;
  conversationId: string;
  userId: string;
  sandboxId: string;
  /** The name asked for (or the IP literal, which is always denied). */
  host: string;
  port: number;
  /** The address connected to (or refused), when the name was resolved. */
  address: string | null;
  /** `failed`: allowed by policy, but the remote could not be reached. */
  decision: 'allowed' | 'denied' | 'failed';
  /** Why it was denied or failed; null when allowed. */
  reason: string | null;
  createdAt: string;
}

/** A period during which a sandbox ran for a user (sandbox hours). */
export interface SandboxSession {
  id: string;
  userId: string;
  conversationId: string;
  startedAt: string;
  /** null while the sandbox runs. */
  endedAt: string | null;
}
