import type { ServerResponse } from 'node:http';
import { setImmediate } from 'node:timers/promises';
import { AppError } from '../core/errors.ts';
import type { ConversationEvent } from '../core/events.ts';
import { silentLogger, type Logger } from '../core/logger.ts';

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

/** Where a stream takes one conversation's events from. */
export interface EventFeed {
  /** Up to `limit` persisted events after `afterSeq`, in sequence order. */
  read(afterSeq: number, limit: number): Promise<ConversationEvent[]>;
  /** Calls `listener` with each event published from now on (after it was persisted); returns the unsubscribe function. */
  subscribe(listener: (event: ConversationEvent) => void): () => void;
}

export interface EventStreamOptions {
  /** Send the events after this sequence number. */
  after: number;
  /** A client that reads nothing for this long while the socket is full is cut off; it resumes with Last-Event-ID. */
  stallMs: number;
  heartbeatMs?: number;
  /** About how many bytes of history one read from the store brings. */
  pageBytes?: number;
  /** Live events held while the socket is full; past this the stream re-reads them from the store later. */
  maxQueued?: number;
  logger?: Logger;
}

export const eventStreamDefaults = { heartbeatMs: 15_000, pageBytes: 128 * 1024, maxQueued: 256 } as const;
/** Small, since nothing is known yet of what an event weighs; the next pages are sized from it. */
const firstPageLimit = 8;
const maxPageLimit = 1000;

/**
 * One client's stream of a conversation's events: the history after `after`, then live events, each exactly once
 * and in sequence order. It writes only while the socket takes data: history is read from the store a page at a time
 * and only when the previous page was sent, and live events that arrive while the socket is full wait in a short
 * queue. When the queue overflows it is dropped and the stream later reads those events from the store instead, so a
 * slow client costs the server one page and one queue, never the conversation.
 */
export class EventStream {
  private lastSent: number;
  private queue: ConversationEvent[] = [];
  /** The store holds events this stream has not sent yet and the queue does not: read them from there. */
  private behind = true;
  private pumping = false;
  private ended = false;
  private pageLimit = firstPageLimit;
  /** The sequence number after which a gap was last looked for in the store (so a gap is looked for only once). */
  private gapCheckedAfter = -1;
  private unsubscribe: () => void = () => undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private readonly endListeners: (() => void)[] = [];
  private readonly heartbeatMs: number;
  private readonly pageBytes: number;
  private readonly maxQueued: number;
  private readonly logger: Logger;

  constructor(
    private readonly response: ServerResponse,
    private readonly feed: EventFeed,
    private readonly options: EventStreamOptions,
  ) {
    this.lastSent = options.after;
    this.heartbeatMs = options.heartbeatMs ?? eventStreamDefaults.heartbeatMs;
    this.pageBytes = options.pageBytes ?? eventStreamDefaults.pageBytes;
    this.maxQueued = options.maxQueued ?? eventStreamDefaults.maxQueued;
    this.logger = options.logger ?? silentLogger;
  }

  /** Sends the response head and starts sending events. */
  start(): void {
    this.response.once('close', () => this.finish());
    // Subscribed before the history is read, so nothing published meanwhile is missed; duplicates are dropped by seq.
    this.unsubscribe = this.feed.subscribe((event) => this.published(event));
    this.heartbeat = setInterval(() => {
      if (!this.response.writableNeedDrain) this.send(': ping\n\n');
    }, this.heartbeatMs);
    openEventStream(this.response);
    void this.pump();
  }

  /** How many live events wait for the socket to drain. */
  get queuedCount(): number {
    return this.queue.length;
  }

  /** Calls `listener` once when the stream has ended, whatever ended it. */
  onEnd(listener: () => void): void {
    if (this.ended) listener();
    else this.endListeners.push(listener);
  }

  /**
   * Ends the stream, with a last `error` event when given (e.g. the credential was revoked). A client whose socket is
   * full would not read that event for a long time, so its connection is closed without it.
   */
  end(final?: { code: string; message: string }): void {
    if (this.ended) return;
    if (this.response.writableNeedDrain) this.response.destroy();
    else this.response.end(final ? formatError(final.code, final.message) : undefined);
    this.finish();
  }

  private published(event: ConversationEvent): void {
    if (this.ended || event.seq <= this.lastSent) return;
    if (!this.pumping && event.seq === this.lastSent + 1 && !this.response.writableNeedDrain) {
      this.write(event);
      return;
    }
    this.queue.push(event);
    if (this.queue.length > this.maxQueued) {
      this.queue = [];
      this.behind = true;
    }
    void this.pump();
  }

  private write(event: ConversationEvent): number {
    const frame = formatEvent(event);
    this.lastSent = event.seq;
    this.send(frame);
    return frame.length;
  }

  private send(text: string): void {
    this.response.write(text);
    // A full socket: the pump waits for it to drain (and cuts the client off if it never does).
    if (this.response.writableNeedDrain) void this.pump();
  }

  /** Sends what is owed (history, then queued events) as fast as the client reads; one pump runs at a time. */
  private async pump(): Promise<void> {
    if (this.pumping || this.ended) return;
    this.pumping = true;
    try {
      while (!this.ended) {
        if (this.response.writableNeedDrain && !(await this.drained())) return;
        this.lookForGap();
        if (this.behind) {
          await this.sendPage();
          continue;
        }
        const next = this.queue.shift();
        if (!next) return;
        this.write(next);
      }
    } catch (error) {
      if (error instanceof AppError) {
        // E.g. the conversation was deleted meanwhile: the client learns why, and its next request gets the answer for good.
        this.end({ code: error.code, message: error.message });
      } else {
        this.logger.error({ err: error }, 'event stream failed');
        this.end({ code: 'INTERNAL', message: 'the event stream failed; reconnect to resume' });
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Sends one page of history; when the page is short, the stream has caught up with the store. */
  private async sendPage(): Promise<void> {
    // Other requests get their turn between pages: with a store that answers at once (SQLite) and a socket that takes
    // all it is given, a whole replay would otherwise run in one go and hold everyone else up.
    await setImmediate();
    if (this.ended) return;
    const page = await this.feed.read(this.lastSent, this.pageLimit);
    if (this.ended) return;
    let bytes = 0;
    for (const event of page) if (event.seq > this.lastSent) bytes += this.write(event);
    if (page.length < this.pageLimit) this.behind = false;
    // Sizes the next page from this one's events, so a page stays near pageBytes whatever the events weigh.
    if (page.length > 0 && bytes > 0) {
      this.pageLimit = Math.max(1, Math.min(maxPageLimit, Math.floor(this.pageBytes / (bytes / page.length))));
    }
  }

  /**
   * Puts the queue in sequence order without what was sent already. When its first event is not the next one (an
   * event reached the bus before its predecessor), the store is read first; once per gap, so a gap the store cannot
   * fill either does not hold the stream up.
   */
  private lookForGap(): void {
    this.queue.sort((a, b) => a.seq - b.seq);
    while (this.queue.length > 0 && this.queue[0]!.seq <= this.lastSent) this.queue.shift();
    const first = this.queue[0];
    if (first && first.seq > this.lastSent + 1 && this.gapCheckedAfter !== this.lastSent) {
      this.gapCheckedAfter = this.lastSent;
      this.behind = true;
    }
  }

  /** Waits until the socket takes data again: true; false when the stream ended or the client stalled meanwhile. */
  private drained(): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (drained: boolean): void => {
        clearTimeout(timer);
        this.response.off('drain', onDrain);
        this.response.off('close', onClose);
        resolve(drained);
      };
      const onDrain = (): void => done(true);
      const onClose = (): void => done(false);
      const timer = setTimeout(() => {
        done(false);
        this.logger.info({ stallSeconds: this.options.stallMs / 1000, lastSent: this.lastSent }, 'event stream ended: the client stopped reading');
        this.end();
      }, this.options.stallMs);
      this.response.on('drain', onDrain);
      this.response.on('close', onClose);
    });
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.queue = [];
    clearInterval(this.heartbeat);
    this.unsubscribe();
    for (const listener of this.endListeners.splice(0)) listener();
  }
}
