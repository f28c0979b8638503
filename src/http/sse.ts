import type { ServerResponse } from 'node:http';
import type { ConversationEvent } from '../core/events.ts';

/** Formats a conversation event as one Server-Sent Event; its `id` is the event's sequence number. */
export function formatEvent(event: ConversationEvent): string {
  const payload = { seq: event.seq, createdAt: event.createdAt, ...event.data };
  return `id: ${event.seq}\nevent: ${event.data.type}\ndata: ${JSON.stringify(payload)}\n\n`;
}

export function formatError(code: string, message: string): string {
  return `event: error\ndata: ${JSON.stringify({ code, message })}\n\n`;
}

export function openEventStream(response: ServerResponse): void {
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  // Tells EventSource clients how long to wait before reconnecting.
  response.write('retry: 2000\n\n');
}
