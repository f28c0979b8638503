/** The API's shapes, as described by GET /api/openapi.json (written by hand: the app never imports server code). */

export interface User {
  id: string;
  email: string;
  role: 'admin' | 'user';
  disabled: boolean;
  createdAt: string;
}

export interface Status {
  version: string;
  registration: 'open' | 'invite' | 'closed';
  modelCredential: { configured: boolean; kind: 'api-key' | 'oauth-token' | null } | null;
  limits: { maxMessageBytes: number; maxUploadBytes: number };
  sandbox: { backend: 'local' | 'docker'; runtimes: Array<'runc' | 'runsc'>; defaultRuntime: 'runc' | 'runsc' | null };
}

export interface Conversation {
  id: string;
  agentId: string;
  title: string;
  lastSeq: number;
  createdAt: string;
  updatedAt: string;
  running?: boolean;
}

export interface AgentLimits {
  memoryMb: number;
  cpus: number;
  turnTimeoutSeconds: number;
}

export interface AgentDefinition {
  name: string;
  description: string;
  instructions: string;
  model: string;
  allowedTools: string[];
  disallowedTools: string[];
  maxTurns: number | null;
  limits: AgentLimits;
  sandboxRuntime?: 'default' | 'runc' | 'runsc';
  /** Fields this app does not edit are kept as they are. */
  [field: string]: unknown;
}

export interface Agent extends AgentDefinition {
  id: string;
  ownerId: string | null;
  builtin: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface ApiToken {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

export interface WorkspaceEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  modifiedAt: string;
}

export interface Activity {
  conversationId: string;
  busy: boolean;
  live: boolean;
  paused: boolean;
  title?: string | null;
  agentId?: string | null;
  userId?: string | null;
  userEmail?: string | null;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheCreationInputTokens: number;
  cacheReadInputTokens: number;
}

export type TurnStatus = 'queued' | 'running' | 'completed' | 'failed' | 'interrupted' | 'timed_out';

/** A conversation event as streamed: `seq` numbers a conversation's events from 1 without gaps. */
export type ConversationEvent = { seq: number; createdAt: string } & (
  | { type: 'turn.queued'; turnId: string; text: string }
  | { type: 'turn.started'; turnId: string; text: string }
  | { type: 'message.delta'; turnId: string; messageId: string; text: string }
  | { type: 'message.completed'; turnId: string; messageId: string; text: string }
  | { type: 'tool.started'; turnId: string; toolUseId: string; name: string; input: unknown }
  | { type: 'tool.ended'; turnId: string; toolUseId: string; output: string; isError: boolean }
  | {
      type: 'turn.ended';
      turnId: string;
      status: Exclude<TurnStatus, 'queued' | 'running'>;
      usage: TokenUsage | null;
      costUsd: number | null;
      durationMs: number;
      error?: { code: string; message: string };
    }
  | { type: 'error'; turnId: string | null; code: string; message: string }
);
