import { EventEmitter } from 'node:events';
import type { ConversationEvent } from '../core/events.ts';
import type { Logger } from '../core/logger.ts';
import type { Store } from '../core/store.ts';

/** How many events one catch-up read brings; a longer gap is read in several. */
const catchUpPage = 500;

/**
 * Fan-out of persisted events to live subscribers (SSE streams, waiting requests). Events this process appends are
 * published at once. Events other replicas append arrive as notifications from the store (a conversation and a
 * sequence number), which only wake the bus: it then reads what its subscribers have not seen from the store, once
 * per conversation however many subscribers it has. The store stays the truth; a notification lost (a dropped
 * listening connection) is made good by reading again after the last event published.
 */
export class EventBus {
  private readonly emitter = new EventEmitter();
  /** Per conversation with subscribers: the newest sequence number published to them. */
  private readonly published = new Map<string, number>();
  private readonly subscribers = new Map<string, number>();
  /** Catch-up reads under way, per conversation; one at a time, run again when woken meanwhile. */
  private readonly reading = new Map<string, { again: boolean }>();
  private readonly unlisten: (() => void)[] = [];

  constructor(
    private readonly store: Pick<Store, 'listEvents' | 'notifications'> | null = null,
    private readonly logger: Logger | null = null,
  ) {
    this.emitter.setMaxListeners(0);
    if (store) {
      this.unlisten.push(store.notifications.onEventAppended((conversationId, seq) => this.appended(conversationId, seq)));
      this.unlisten.push(store.notifications.onGap(() => this.catchUpAll()));
    }
  }

  publish(event: ConversationEvent): void {
    const last = this.published.get(event.conversationId);
    // Already published (this process's own append, notified back by the store). Subscribers fill any gap from the store.
    if (last !== undefined && event.seq <= last) return;
    if (this.subscribers.has(event.conversationId)) this.published.set(event.conversationId, event.seq);
    this.emitter.emit(event.conversationId, event);
  }

  /** Calls `listener` for each event of the conversation published from now on; returns the unsubscribe function. */
  subscribe(conversationId: string, listener: (event: ConversationEvent) => void): () => void {
    this.emitter.on(conversationId, listener);
    this.subscribers.set(conversationId, (this.subscribers.get(conversationId) ?? 0) + 1);
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      this.emitter.off(conversationId, listener);
      const left = (this.subscribers.get(conversationId) ?? 1) - 1;
      if (left > 0) this.subscribers.set(conversationId, left);
      else {
        this.subscribers.delete(conversationId);
        this.published.delete(conversationId);
      }
    };
  }

  close(): void {
    for (const unlisten of this.unlisten.splice(0)) unlisten();
  }

  private appended(conversationId: string, seq: number): void {
    if (!this.subscribers.has(conversationId)) return;
    const last = this.published.get(conversationId);
    if (last !== undefined && seq <= last) return;
    // The first notice for this conversation: its subscribers read the history themselves, so start just before it.
    if (last === undefined) this.published.set(conversationId, seq - 1);
    this.catchUp(conversationId);
  }

  private catchUpAll(): void {
    for (const conversationId of this.subscribers.keys()) if (this.published.has(conversationId)) this.catchUp(conversationId);
  }

  private catchUp(conversationId: string): void {
    const running = this.reading.get(conversationId);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.reading.set(conversationId, state);
    void (async () => {
      try {
        do {
          state.again = false;
          for (;;) {
            const after = this.published.get(conversationId);
            if (after === undefined || !this.store) return;
            const events = await this.store.listEvents(conversationId, { afterSeq: after, limit: catchUpPage });
            for (const event of events) this.publish(event);
            if (events.length < catchUpPage) break;
          }
        } while (state.again);
      } catch (error) {
        this.logger?.warn({ err: error, conversationId }, 'could not read events another replica appended');
      } finally {
        this.reading.delete(conversationId);
      }
    })();
  }
}
