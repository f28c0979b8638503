import { z } from 'zod';
import type { TokenUsage, TurnStatus } from './types.ts';

/**
 * The platform's own conversation events: the streaming contract clients rely on. Raw Claude Code JSON never
 * appears here. These schemas are the one source of the events' shapes: the types below are inferred from them, and
 * the OpenAPI spec (hence the web app's types) is generated from them; each `id` names a component of the spec.
 */

export const turnStatusSchema = z.enum(['queued', 'running', 'completed', 'failed', 'interrupted', 'timed_out']).meta({ id: 'TurnStatus' });

export const tokenUsageSchema = z.object({
  inputTokens: z.number(),
  outputTokens: z.number(),
  cacheCreationInputTokens: z.number(),
  cacheReadInputTokens: z.number(),
}).meta({ id: 'TokenUsage', description: 'Model tokens, by kind.' });

const turnId = z.string().describe('the turn the event belongs to');
const problem = { code: z.string().describe('an error code of the API (src/core/errors.ts)'), message: z.string() };

export const turnQueuedSchema = z
  .object({ type: z.literal('turn.queued'), turnId, text: z.string().describe('the message that starts the turn') })
  .meta({ id: 'TurnQueuedEvent', description: 'A message was accepted; its turn waits behind any earlier one.' });

export const turnStartedSchema = z
  .object({ type: z.literal('turn.started'), turnId, text: z.string() })
  .meta({ id: 'TurnStartedEvent', description: 'The turn began: the agent works on the message.' });

export const messageDeltaSchema = z
  .object({ type: z.literal('message.delta'), turnId, messageId: z.string(), text: z.string().describe('text to append to the message') })
  .meta({ id: 'MessageDeltaEvent', description: 'A piece of the assistant message being written.' });

export const messageCompletedSchema = z
  .object({ type: z.literal('message.completed'), turnId, messageId: z.string(), text: z.string().describe('the whole message') })
  .meta({ id: 'MessageCompletedEvent', description: 'An assistant message is complete.' });

export const toolStartedSchema = z
  .object({ type: z.literal('tool.started'), turnId, toolUseId: z.string(), name: z.string(), input: z.unknown().describe('the tool’s input, as the model gave it') })
  .meta({ id: 'ToolStartedEvent', description: 'The agent called a tool.' });

export const toolEndedSchema = z
  .object({ type: z.literal('tool.ended'), turnId, toolUseId: z.string(), output: z.string(), isError: z.boolean() })
  .meta({ id: 'ToolEndedEvent', description: 'A tool call returned.' });

export const turnEndedSchema = z
  .object({
    type: z.literal('turn.ended'),
    turnId,
    status: turnStatusSchema.exclude(['queued', 'running']),
    usage: tokenUsageSchema.nullable().describe('model tokens the turn used; null when unknown'),
    costUsd: z.number().nullable().describe('estimated cost from the price table; null when unknown'),
    durationMs: z.number(),
    error: z.object(problem).optional().describe('why the turn failed, when it did'),
  })
  .meta({ id: 'TurnEndedEvent', description: 'The turn is over: how it ended and what it used.' });

export const errorEventSchema = z
  .object({ type: z.literal('error'), turnId: turnId.nullable(), ...problem })
  .meta({ id: 'ErrorEvent', description: 'Something went wrong; within a turn (turnId set) the turn may go on, e.g. SANDBOX_OUT_OF_MEMORY, WORKSPACE_FULL.' });

/** One event's payload, told apart by `type`. */
export const eventDataSchema = z
  .discriminatedUnion('type', [
    turnQueuedSchema,
    turnStartedSchema,
    messageDeltaSchema,
    messageCompletedSchema,
    toolStartedSchema,
    toolEndedSchema,
    turnEndedSchema,
    errorEventSchema,
  ])
  .meta({ id: 'EventData', description: 'One event’s payload; `type` tells which.' });

export type EventData = z.infer<typeof eventDataSchema>;

export type EventType = EventData['type'];

/** An event as persisted: numbered within its conversation. */
export interface ConversationEvent {
  conversationId: string;
  seq: number;
  createdAt: string;
  data: EventData;
}

// The domain types in types.ts and the wire schemas above must agree: a change to one alone fails to compile here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const domainTypesAgree: [Same<z.infer<typeof turnStatusSchema>, TurnStatus>, Same<z.infer<typeof tokenUsageSchema>, TokenUsage>] = [true, true];
