import { z } from 'zod';
import { agentDefinitionSchema } from '../agents/agent-schema.ts';
import { eventDataSchema, tokenUsageSchema, turnStatusSchema } from '../core/events.ts';

/**
 * Response shapes: they validate what the server sends and describe it in the OpenAPI spec. A shape given an `id`
 * is a component of the spec (`components.schemas.<id>`), which the web app's types name.
 */

export const errorBody = z
  .object({
    error: z.object({
      code: z.string().describe('one of the codes in src/core/errors.ts'),
      message: z.string(),
      requestId: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .meta({ id: 'Error', description: 'Every error answer of the API.' });

export const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  role: z.enum(['admin', 'user']),
  disabled: z.boolean(),
  createdAt: z.string(),
}).meta({ id: 'User' });

export const tokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
}).meta({ id: 'ApiToken' });

export const agentSchema = agentDefinitionSchema.extend({
  id: z.string(),
  ownerId: z.string().nullable(),
  builtin: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
}).meta({ id: 'Agent' });

export const conversationSchema = z.object({
  id: z.string(),
  agentId: z.string(),
  title: z.string(),
  lastSeq: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
}).meta({ id: 'Conversation' });

export const turnSchema = z.object({
  id: z.string(),
  status: turnStatusSchema,
  input: z.string(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  usage: tokenUsageSchema.nullable(),
  costUsd: z.number().nullable(),
  error: z.string().nullable(),
}).meta({ id: 'Turn' });

export const messageSchema = z.object({ role: z.enum(['user', 'assistant']), turnId: z.string(), text: z.string(), createdAt: z.string() }).meta({ id: 'Message' });

/** An event as a stream sends it: the payload with its sequence number and time. */
export const streamedEventSchema = z
  .intersection(
    z.object({ seq: z.number().int().describe('numbers the conversation’s events from 1 without gaps; the SSE `id`'), createdAt: z.string() }),
    eventDataSchema,
  )
  .meta({ id: 'ConversationEvent', description: 'One event of a conversation, as the `data` of the SSE message named by its `type`.' });

/** The last message of a stream the server ends, e.g. when the credential that opened it is revoked. */
export const streamClosedSchema = z
  .object({ code: z.string(), message: z.string() })
  .meta({ id: 'StreamClosed', description: 'The `data` of a last `error` message without `id`: the server ended the stream (e.g. UNAUTHORIZED when its credential was revoked).' });

export const idParams = z.object({ id: z.string().min(1).max(100) });

export const errorAnswer = {
  description: 'An error; its code tells which (the codes and their statuses are in src/core/errors.ts)',
  content: { 'application/json': { schema: errorBody } },
};

/** Every error answer has the body `{ error: { code, message, requestId } }`; every documented route gets these (src/http/openapi.ts). */
export const errorResponses = { '4xx': errorAnswer, '5xx': errorAnswer };
