import { z } from 'zod';
import { AppError, badRequest } from '../../core/errors.ts';
import { requireUser } from '../auth.ts';
import { idParams, streamClosedSchema, streamedEventSchema } from '../schemas.ts';
import type { App, AppServices } from '../app.ts';
import { ConcurrencyLimit } from '../concurrency-limit.ts';
import { revokedMessage, trackConnection } from '../live-connections.ts';
import { EventStream } from '../sse.ts';
import { StreamSlots } from '../stream-slots.ts';

/**
 * Streams replaying history read the store a few at a time: two hundred of them at once would otherwise queue two
 * hundred reads ahead of every other request (SQLite has one connection; PostgreSQL's pool is small too).
 */
const historyReadsAtOnce = 2;

const drainingMessage = 'this server replica is shutting down; reconnect with Last-Event-ID to continue (the stream goes on elsewhere)';

function parseAfter(header: string | string[] | undefined, query: string | undefined): number {
  const raw = (Array.isArray(header) ? header[0] : header) ?? query ?? '0';
  if (!/^\d{1,15}$/.test(raw.trim())) throw badRequest('Last-Event-ID and ?after must be a non-negative event number');
  return Number(raw.trim());
}

export function registerEventRoutes(app: App, { conversations, config, drainSignal }: AppServices): void {
  const slots = new StreamSlots({ perUser: config.events.streamsPerUser, perConversation: config.events.streamsPerConversation });
  const historyReads = new ConcurrencyLimit(historyReadsAtOnce);
  app.get(
    '/api/conversations/:id/events',
    {
      schema: {
        tags: ['conversations'],
        summary: 'The conversation’s events as Server-Sent Events',
        description:
          'Replays the events after Last-Event-ID (or ?after=N; all when absent), then streams live ones. Each SSE `id` is the event’s sequence number ' +
          'and `event` its type: turn.queued, turn.started, message.delta, message.completed, tool.started, tool.ended, turn.ended, error. ' +
          '`data` is the event as JSON with `seq` and `createdAt`. A client that reads nothing for AGENTYARD_EVENT_STREAM_STALL_SECONDS while its ' +
          'connection is full is disconnected and resumes with Last-Event-ID. Streams open at once are bounded per user and per conversation ' +
          '(429 TOO_MANY_STREAMS).',
        params: idParams,
        querystring: z.object({ after: z.string().optional() }),
        headers: z.object({ 'last-event-id': z.string().optional() }).passthrough(),
        response: {
          200: {
            description: 'The events, each as one SSE message whose `data` is one of these (JSON)',
            content: { 'text/event-stream': { schema: z.union([streamedEventSchema, streamClosedSchema]) } },
          },
        },
      },
    },
    async (request, reply) => {
      const user = requireUser(request);
      const conversationId = request.params.id;
      const after = parseAfter(request.headers['last-event-id'], request.query.after);
      await conversations.get(user, conversationId);
      if (drainSignal.draining) throw new AppError('REPLICA_DRAINING', drainingMessage);
      const release = slots.acquire(user.id, conversationId);

      reply.hijack();
      const stream = new EventStream(
        reply.raw,
        {
          read: (afterSeq, limit) => historyReads.run(() => conversations.events(user, conversationId, afterSeq, limit)),
          subscribe: (listener) => conversations.subscribe(conversationId, listener),
        },
        { after, stallMs: config.events.stallSeconds * 1000, logger: request.log.child({ conversationId }) },
      );
      stream.onEnd(release);
      // Revoking the credential that opened the stream ends it with a last `error` event.
      const connection = trackConnection(request, () => stream.end({ code: 'UNAUTHORIZED', message: revokedMessage }));
      stream.onEnd(() => connection.release());
      // A replica shutting down ends its streams; the client reconnects (to another replica) with Last-Event-ID.
      const stopListening = drainSignal.onDrain(() => stream.end({ code: 'REPLICA_DRAINING', message: drainingMessage }));
      stream.onEnd(stopListening);
      stream.start();
    },
  );
}
