import { SseParser, type SseMessage } from './sse-parser.ts';

/** An event with its sequence number; a conversation numbers its events 1, 2, 3… */
export interface SequencedEvent {
  seq: number;
  type: string;
  [field: string]: unknown;
}

export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'stopped';

export interface EventStreamOptions {
  /** The events URL, without a query string. */
  url: string;
  /** Resume after this event (0: from the start). */
  after?: number;
  /** Called with events in sequence order, each exactly once. */
  onEvents(events: SequencedEvent[]): void;
  onState?(state: StreamState, detail: { error?: string; retryInMs?: number }): void;
  /** The server refused for good (401, 403, 404): the stream stops. */
  onFatal?(error: { status: number; code: string; message: string }): void;
  fetch?: typeof fetch;
  /** First and largest delay between reconnects. */
  retryMs?: { initial: number; max: number };
  /** How long a missing event may be waited for before the stream restarts from the last one in order. */
  gapTimeoutMs?: number;
  /** Reconnect when nothing at all (not even the server's heartbeat) arrives for this long. */
  idleTimeoutMs?: number;
}

/**
 * Follows a conversation's Server-Sent Events across disconnects: every (re)connection asks for the events after
 * the last one delivered (Last-Event-ID and ?after), duplicates are dropped and events are delivered in sequence
 * order, so a flaky network or a reload loses nothing and shows nothing twice.
 */
export class EventStreamClient {
  private delivered: number;
  private readonly pending = new Map<number, SequencedEvent>();
  private controller: AbortController | null = null;
  private stopped = true;
  private attempt = 0;
  private wake: (() => void) | null = null;
  private gapTimer: ReturnType<typeof setTimeout> | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  /** True until the first event of a connection: the server replays in order, so it may skip numbers it never had. */
  private firstOfConnection = true;
  private readonly fetch: typeof fetch;
  private readonly retry: { initial: number; max: number };

  constructor(private readonly options: EventStreamOptions) {
    this.delivered = options.after ?? 0;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.retry = options.retryMs ?? { initial: 500, max: 10_000 };
  }

  /** Sequence number of the last event delivered. */
  get lastSeq(): number {
    return this.delivered;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    this.controller?.abort();
    this.wake?.();
    this.options.onState?.('stopped', {});
  }

  /** Drops the current connection (if any) and connects again at once, e.g. when the browser comes back online. */
  reconnectNow(): void {
    if (this.stopped) return;
    this.attempt = 0;
    this.controller?.abort();
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const controller = new AbortController();
      this.controller = controller;
      let error: string | undefined;
      try {
        await this.connect(controller);
      } catch (caught) {
        error = caught instanceof Error ? caught.message : String(caught);
      } finally {
        this.clearTimers();
      }
      if (this.stopped) break;
      const delay = controller.signal.aborted && error === undefined ? 0 : this.backoff();
      this.options.onState?.('reconnecting', { ...(error ? { error } : {}), retryInMs: delay });
      await this.sleep(delay);
    }
  }

  private async connect(controller: AbortController): Promise<void> {
    this.options.onState?.(this.attempt === 0 && this.delivered === 0 ? 'connecting' : 'reconnecting', {});
    const after = String(this.delivered);
    this.firstOfConnection = true;
    this.pending.clear();
    let response: Response;
    try {
      response = await this.fetch(`${this.options.url}?after=${after}`, {
        headers: { accept: 'text/event-stream', 'last-event-id': after },
        credentials: 'same-origin',
        cache: 'no-store',
        signal: controller.signal,
      });
    } catch (error) {
      if (controller.signal.aborted) return;
      throw new Error('the server cannot be reached', { cause: error });
    }
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      const body = (await response.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
      this.stop();
      this.options.onFatal?.({ status: response.status, code: body?.error?.code ?? `HTTP_${response.status}`, message: body?.error?.message ?? 'refused' });
      return;
    }
    if (!response.ok || !response.body) {
      // E.g. 429 TOO_MANY_STREAMS: the server's message says which bound was reached; retried after a delay.
      const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
      throw new Error(body?.error?.message ?? `the event stream answered ${response.status}`);
    }

    this.options.onState?.('live', {});
    this.attempt = 0;
    this.touch(controller);
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.touch(controller);
        const batch: SequencedEvent[] = [];
        for (const message of parser.push(value)) {
          const outcome = this.handle(message, batch, controller);
          if (outcome === 'ok') continue;
          if (batch.length) this.options.onEvents(batch);
          // The server ended the stream with an error: reconnect after a delay, so a failing server is not hammered.
          void reader.cancel().catch(() => undefined);
          throw new Error(outcome.error);
        }
        if (batch.length) this.options.onEvents(batch);
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      throw error;
    } finally {
      reader.releaseLock();
    }
    // The server closed the stream (a restart, a proxy timeout): resume from where we are.
    throw new Error('the event stream ended');
  }

  private handle(message: SseMessage, batch: SequencedEvent[], controller: AbortController): 'ok' | { error: string } {
    let event: SequencedEvent;
    try {
      event = JSON.parse(message.data) as SequencedEvent;
    } catch {
      return 'ok';
    }
    // An error of the stream itself (not a conversation event): it carries no id, and the stream ends after it.
    if (message.id === null && typeof event.seq !== 'number') {
      return { error: typeof event.message === 'string' ? event.message : 'the event stream failed' };
    }
    const seq = typeof event.seq === 'number' ? event.seq : Number(message.id);
    if (!Number.isSafeInteger(seq) || seq <= this.delivered || this.pending.has(seq)) return 'ok';
    event.seq = seq;
    if (this.firstOfConnection && seq > this.delivered + 1) {
      // The replay starts here: whatever lies between does not exist.
      this.delivered = seq - 1;
    }
    this.firstOfConnection = false;
    this.pending.set(seq, event);
    while (this.pending.has(this.delivered + 1)) {
      const next = this.pending.get(this.delivered + 1)!;
      this.pending.delete(next.seq);
      this.delivered = next.seq;
      batch.push(next);
    }
    if (this.pending.size === 0) {
      if (this.gapTimer) clearTimeout(this.gapTimer);
      this.gapTimer = null;
    } else if (!this.gapTimer) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = null;
        // Still missing: ask again from the last event in order; what was held back is replayed too.
        controller.abort();
      }, this.options.gapTimeoutMs ?? 2_000);
    }
    return 'ok';
  }

  private touch(controller: AbortController): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => controller.abort(), this.options.idleTimeoutMs ?? 45_000);
  }

  private clearTimers(): void {
    if (this.gapTimer) clearTimeout(this.gapTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.gapTimer = null;
    this.idleTimer = null;
  }

  private backoff(): number {
    const base = Math.min(this.retry.max, this.retry.initial * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
