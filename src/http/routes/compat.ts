import { z } from 'zod';
import { AppError, type ErrorCode, errorStatus } from '../../core/errors.ts';
import { tokenUsageSchema, type EventData } from '../../core/events.ts';
import { requireUser } from '../auth.ts';
import type { App, AppServices } from '../app.ts';

type TurnEnded = Extract<EventData, { type: 'turn.ended' }>;

/** The prototype's one route: send a message, wait for the turn, answer with the reply text. */
export function registerCompatRoutes(app: App, { conversations }: AppServices): void {
  app.post(
    '/api/conversation',
    {
      schema: {
        tags: ['compatibility'],
        summary: 'Prototype-compatible: run one turn and answer with the reply',
        description: 'Creates a conversation with the default agent when conversationId is absent. Waits for the turn to end.',
        body: z.object({ conversationId: z.string().max(100).optional(), message: z.string() }),
        response: {
          200: z.object({
            conversationId: z.string(),
            turnId: z.string(),
            reply: z.string(),
            status: z.string(),
            usage: tokenUsageSchema.nullable(),
            costUsd: z.number().nullable(),
            durationMs: z.number(),
          }),
        },
      },
    },
    async (request) => {
      const user = requireUser(request);
      const { message } = request.body;
      const conversation = request.body.conversationId
        ? await conversations.get(user, request.body.conversationId)
        : await conversations.create(user, { title: message.trim().slice(0, 80) || 'New conversation' });

      let turnId: string | null = null;
      const replies = new Map<string, string[]>();
      let resolveEnded: (event: TurnEnded) => void = () => undefined;
      const ended = new Promise<TurnEnded>((resolve) => (resolveEnded = resolve));
      const early: TurnEnded[] = [];
      const unsubscribe = conversations.subscribe(conversation.id, ({ data }) => {
        if (data.type === 'message.completed') replies.set(data.turnId, [...(replies.get(data.turnId) ?? []), data.text]);
        if (data.type === 'turn.ended') (turnId === data.turnId ? resolveEnded(data) : early.push(data));
      });
      try {
        const turn = await conversations.send(user, conversation.id, message);
        turnId = turn.id;
        const already = early.find((event) => event.turnId === turn.id);
        if (already) resolveEnded(already);
        const result = await ended;
        if (result.error && result.status !== 'completed') {
          const code = (result.error.code in errorStatus ? result.error.code : 'AGENT_FAILED') as ErrorCode;
          throw new AppError(code, result.error.message, { conversationId: conversation.id, turnId: turn.id });
        }
        const texts = replies.get(turn.id) ?? [];
        return {
          conversationId: conversation.id,
          turnId: turn.id,
          reply: texts.at(-1) ?? '',
          status: result.status,
          usage: result.usage,
          costUsd: result.costUsd,
          durationMs: result.durationMs,
        };
      } finally {
        unsubscribe();
      }
    },
  );
}
