import type { Transaction } from 'kysely';
import type { Logger } from '../core/logger.ts';
import type { StoreNotifications } from '../core/store.ts';
import type { Database } from './database.ts';

/**
 * How a SqlStore carries its notifications: the public StoreNotifications plus the two moments appendEvent offers to
 * announce an event. A backend uses one of them: PostgreSQL notifies inside the transaction (delivered at commit, in
 * commit order), the in-process one after the commit.
 */
export interface NotificationBackend extends StoreNotifications {
  /** Runs inside the transaction that appends the event; its failure aborts the append. */
  eventAppending(transaction: Transaction<Database>, conversationId: string, seq: number): Promise<void>;
  /** Runs once that transaction has committed. */
  eventAppended(conversationId: string, seq: number): void;
  close(): Promise<void>;
}

/** Listeners of one kind; one that throws is logged and does not keep the others (or the store's write) from running. */
export class ListenerSet<Arguments extends unknown[]> {
  readonly #listeners = new Set<(...args: Arguments) => void>();

  constructor(
    private readonly logger: Logger,
    private readonly kind: string,
  ) {}

  add(listener: (...args: Arguments) => void): () => void {
    // Wrapped so that the same function subscribed twice is called twice and unsubscribed once per call.
    const entry = (...args: Arguments): void => listener(...args);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  call(...args: Arguments): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(...args);
      } catch (error) {
        this.logger.error({ err: error, notification: this.kind }, 'notification listener failed');
      }
    }
  }
}

/** Notifications within this process (SQLite, which runs one replica): nothing is ever missed, so onGap never fires. */
export class LocalNotifications implements NotificationBackend {
  readonly #events: ListenerSet<[string, number]>;
  readonly #wakes: ListenerSet<[string]>;

  constructor(logger: Logger) {
    this.#events = new ListenerSet(logger, 'event-appended');
    this.#wakes = new ListenerSet(logger, 'wake');
  }

  onEventAppended(listener: (conversationId: string, seq: number) => void): () => void {
    return this.#events.add(listener);
  }

  onWake(listener: (conversationId: string) => void): () => void {
    return this.#wakes.add(listener);
  }

  onGap(_listener: () => void): () => void {
    return () => undefined;
  }

  async wake(conversationId: string): Promise<void> {
    this.#wakes.call(conversationId);
  }

  async eventAppending(): Promise<void> {}

  eventAppended(conversationId: string, seq: number): void {
    this.#events.call(conversationId, seq);
  }

  async close(): Promise<void> {}
}
