import type { TokenUsage, TurnStatus } from './types.ts';

/**
 * The platform's own conversation events: the streaming contract clients rely on.
 * Raw Claude Code JSON never appears here.
 */
export type EventData =
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
  | { type: 'error'; turnId: string | null; code: string; message: string };

export type EventType = EventData['type'];

/** An event as persisted: numbered within its conversation. */
export interface ConversationEvent {
  conversationId: string;
  seq: number;
  createdAt: string;
  data: EventData;
}
