import type { Selectable } from 'kysely';
import type { ConversationEvent, EventData } from '../core/events.ts';
import type { AgentPatch } from '../core/store.ts';
import type {
  Agent,
  ApiToken,
  Conversation,
  EgressRecord,
  Invite,
  SandboxRuntimeChoice,
  TokenUsage,
  Turn,
  UsageRecord,
  User,
  UserWithPassword,
} from '../core/types.ts';
import type {
  AgentsTable,
  ApiTokensTable,
  ConversationsTable,
  EgressLogTable,
  EventsTable,
  InvitesTable,
  TurnsTable,
  UsageRecordsTable,
  UsersTable,
} from './database.ts';

/** Conversions between stored rows and domain records. */

export const normalizeEmail = (email: string): string => email.toLowerCase();

export function toUser(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    email: row.email,
    role: row.role,
    disabled: row.disabled !== 0,
    createdAt: row.created_at,
  };
}

export function toUserWithPassword(row: Selectable<UsersTable>): UserWithPassword {
  return { ...toUser(row), passwordHash: row.password_hash };
}

export function toApiToken(row: Selectable<ApiTokensTable>): ApiToken {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    prefix: row.prefix,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

export function toInvite(row: Selectable<InvitesTable>): Invite {
  return {
    id: row.id,
    email: row.email,
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
  };
}

export function toAgent(row: Selectable<AgentsTable>): Agent {
  return {
    id: row.id,
    ownerId: row.owner_id,
    name: row.name,
    description: row.description,
    instructions: row.instructions,
    model: row.model,
    allowedTools: JSON.parse(row.allowed_tools) as string[],
    disallowedTools: JSON.parse(row.disallowed_tools) as string[],
    maxTurns: row.max_turns,
    limits: {
      memoryMb: row.memory_mb,
      cpus: Number(row.cpus),
      turnTimeoutSeconds: row.turn_timeout_seconds,
    },
    egressDomains: JSON.parse(row.egress_domains) as string[],
    sandboxRuntime: row.sandbox_runtime as SandboxRuntimeChoice,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function fromAgent(agent: Agent): AgentsTable {
  return {
    id: agent.id,
    owner_id: agent.ownerId,
    created_at: agent.createdAt,
    updated_at: agent.updatedAt,
    ...fromAgentDefinition(agent),
  };
}

type AgentDefinitionColumns = Omit<AgentsTable, 'id' | 'owner_id' | 'created_at' | 'updated_at'>;

function fromAgentDefinition(agent: Omit<Agent, 'id' | 'ownerId' | 'createdAt' | 'updatedAt'>): AgentDefinitionColumns {
  return {
    name: agent.name,
    description: agent.description,
    instructions: agent.instructions,
    model: agent.model,
    allowed_tools: JSON.stringify(agent.allowedTools),
    disallowed_tools: JSON.stringify(agent.disallowedTools),
    max_turns: agent.maxTurns,
    memory_mb: agent.limits.memoryMb,
    cpus: agent.limits.cpus,
    turn_timeout_seconds: agent.limits.turnTimeoutSeconds,
    egress_domains: JSON.stringify(agent.egressDomains),
    sandbox_runtime: agent.sandboxRuntime,
  };
}

/** The columns an agent patch changes; keys absent from the patch stay absent. */
export function fromAgentPatch(patch: AgentPatch): Partial<AgentDefinitionColumns> {
  const columns: Partial<AgentDefinitionColumns> = {};
  if (patch.name !== undefined) columns.name = patch.name;
  if (patch.description !== undefined) columns.description = patch.description;
  if (patch.instructions !== undefined) columns.instructions = patch.instructions;
  if (patch.model !== undefined) columns.model = patch.model;
  if (patch.allowedTools !== undefined) columns.allowed_tools = JSON.stringify(patch.allowedTools);
  if (patch.disallowedTools !== undefined) columns.disallowed_tools = JSON.stringify(patch.disallowedTools);
  if (patch.maxTurns !== undefined) columns.max_turns = patch.maxTurns;
  if (patch.limits !== undefined) {
    columns.memory_mb = patch.limits.memoryMb;
    columns.cpus = patch.limits.cpus;
    columns.turn_timeout_seconds = patch.limits.turnTimeoutSeconds;
  }
  if (patch.egressDomains !== undefined) columns.egress_domains = JSON.stringify(patch.egressDomains);
  if (patch.sandboxRuntime !== undefined) columns.sandbox_runtime = patch.sandboxRuntime;
  return columns;
}

export function toConversation(row: Selectable<ConversationsTable>): Conversation {
  return {
    id: row.id,
    userId: row.user_id,
    agentId: row.agent_id,
    title: row.title,
    claudeSessionId: row.claude_session_id,
    claudeResumeAt: row.claude_resume_at,
    lastSeq: Number(row.last_seq),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function toTurn(row: Selectable<TurnsTable>): Turn {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    status: row.status,
    input: row.input,
    createdAt: row.created_at,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    usage: row.usage === null ? null : (JSON.parse(row.usage) as TokenUsage),
    costUsd: row.cost_usd === null ? null : Number(row.cost_usd),
    error: row.error,
  };
}

export function toEvent(row: Selectable<EventsTable>): ConversationEvent {
  return {
    conversationId: row.conversation_id,
    seq: Number(row.seq),
    createdAt: row.created_at,
    data: JSON.parse(row.data) as EventData,
  };
}

export function toUsageRecord(row: Selectable<UsageRecordsTable>): UsageRecord {
  return {
    id: row.id,
    userId: row.user_id,
    conversationId: row.conversation_id,
    turnId: row.turn_id,
    agentId: row.agent_id,
    model: row.model,
    usage: {
      inputTokens: row.input_tokens,
      outputTokens: row.output_tokens,
      cacheCreationInputTokens: row.cache_creation_input_tokens,
      cacheReadInputTokens: row.cache_read_input_tokens,
    },
    createdAt: row.created_at,
  };
}

export function fromUsageRecord(record: UsageRecord): UsageRecordsTable {
  return {
    id: record.id,
    user_id: record.userId,
    conversation_id: record.conversationId,
    turn_id: record.turnId,
    agent_id: record.agentId,
    model: record.model,
    input_tokens: record.usage.inputTokens,
    output_tokens: record.usage.outputTokens,
    cache_creation_input_tokens: record.usage.cacheCreationInputTokens,
    cache_read_input_tokens: record.usage.cacheReadInputTokens,
    created_at: record.createdAt,
  };
}

export function toEgressRecord(row: Selectable<EgressLogTable>): EgressRecord {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    userId: row.user_id,
    sandboxId: row.sandbox_id,
    host: row.host,
    port: Number(row.port),
    address: row.address,
    decision: row.decision,
    reason: row.reason,
    createdAt: row.created_at,
  };
}

export function fromEgressRecord(record: EgressRecord): EgressLogTable {
  return {
    id: record.id,
    conversation_id: record.conversationId,
    user_id: record.userId,
    sandbox_id: record.sandboxId,
    host: record.host,
    port: record.port,
    address: record.address,
    decision: record.decision,
    reason: record.reason,
    created_at: record.createdAt,
  };
}
