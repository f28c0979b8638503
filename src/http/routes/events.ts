import { z } from 'zod';
import type { ConversationEvent } from '../../core/events.ts';
import { badRequest } from '../../core/errors.ts';
import { requireUser } from '../auth.ts';
import { errorResponses, idParams } from '../schemas.ts';
import type { App, AppServices } from '../server.ts';
import { formatError, formatEvent, openEventStream } from '../sse.ts';

const heartbeatMs = 15_000;
const replayPage = 1000;

function parseAfter(header: string | string[] | undefined, query: string | undefined): number {
  const raw = (Array.isArray(header) ? header[0] : header) ?? query ?? '0';
  if (!/^\d{1,15}$/.test(raw.trim())) throw badRequest('Last-Event-ID and ?after must be a non-negative event number');
  return Number(raw.trim());
}

export function registerEventRoutes(app: App, { conversations }: AppServices): void {
  app.get(
    '/api/conversations/:id/events',
    {
      schema: {
        tags: ['conversations'],
        summary: 'The conversation’s events as Server-Sent Events',
        description:
          'Replays the events after Last-Event-ID (or ?after=N; all when absent), then streams live ones. Each SSE `id` is the event’s sequence number ' +
          'and `event` its type: turn.queued, turn.started, message.delta, message.completed, tool.started, tool.ended, turn.ended, error. ' +
          '`data` is the event as JSON with `seq` and `createdAt`.',
        params: idParams,
        querystring: z.object({ after: z.string().optional() }),
        headers: z.object({ 'last-event-id': z.string().optional() }).passthrough(),
        response: { 200: z.string().describe('text/event-stream'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const user = requireUser(request);
      const conversationId = request.params.id;
      let lastSent = parseAfter(request.headers['last-event-id'], request.query.after);
      await conversations.get(user, conversationId);

      // Subscribe before replaying so nothing published during the replay is missed; duplicates are dropped by seq.
      const pending: ConversationEvent[] = [];
      let replaying = true;
      const response = reply.raw;
      const send = (event: ConversationEvent): void => {
        if (event.seq <= lastSent) return;
        lastSent = event.seq;
        response.write(formatEvent(event));
      };
      const unsubscribe = conversations.subscribe(conversationId, (event) => (replaying ? pending.push(event) : send(event)));
      const heartbeat = setInterval(() => response.write(': ping\n\n'), heartbeatMs);
      const close = (): void => {
        clearInterval(heartbeat);
        unsubscribe();
      };
      request.raw.on('close', close);

      reply.hijack();
      openEventStream(response);
      try {
        for (;;) {
          const page = await conversations.events(user, conversationId, lastSent, replayPage);
          page.forEach(send);
          if (page.length < replayPage) break;
        }
        replaying = false;
        pending.sort((a, b) => a.seq - b.seq).forEach(send);
        pending.length = 0;
      } catch (error) {
        request.log.error({ err: error }, 'event replay failed');
        response.end(formatError('INTERNAL', 'the event stream failed; reconnect to resume'));
        close();
      }
    },
  );
}
