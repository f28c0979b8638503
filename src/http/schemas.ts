import { z } from 'zod';
import { agentDefinitionSchema } from '../agents/agent-schema.ts';

/** Response shapes: they validate what the server sends and describe it in the OpenAPI spec. */

export const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), requestId: z.string().optional(), details: z.record(z.string(), z.unknown()).optional() }),
});

export const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  role: z.enum(['admin', 'user']),
  disabled: z.boolean(),
  createdAt: z.string(),
});

export const tokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});

export const agentSchema = agentDefinitionSchema.extend({
  id: z.string(),
  ownerId: z.string().nullable(),
  builtin: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const conversationSchema = z.object({
  id: z.string(),
  agentId: z.string(),
  title: z.string(),
  lastSeq: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const usageSchema = z
  .object({ inputTokens: z.number(), outputTokens: z.number(), cacheCreationInputTokens: z.number(), cacheReadInputTokens: z.number() })
  .nullable();

export const turnSchema = z.object({
  id: z.string(),
  status: z.enum(['queued', 'running', 'completed', 'failed', 'interrupted', 'timed_out']),
  input: z.string(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  usage: usageSchema,
  costUsd: z.number().nullable(),
  error: z.string().nullable(),
});

export const messageSchema = z.object({ role: z.enum(['user', 'assistant']), turnId: z.string(), text: z.string(), createdAt: z.string() });

export const idParams = z.object({ id: z.string().min(1).max(100) });

export const errorResponses = {
  400: errorBody,
  401: errorBody,
  403: errorBody,
  404: errorBody,
  409: errorBody,
  413: errorBody,
  429: errorBody,
  500: errorBody,
  502: errorBody,
  503: errorBody,
};
