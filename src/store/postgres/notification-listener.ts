import { sql, type Kysely, type Transaction } from 'kysely';
import type { Client, Notification } from 'pg';
import type { Logger } from '../../core/logger.ts';
import type { Database } from '../database.ts';
import { ListenerSet, type NotificationBackend } from '../notifications.ts';

/** Payload `<conversationId> <seq>`, sent by appendEvent inside its transaction. */
export const eventsChannel = 'agentyard_events';
/** Payload `<conversationId>`. */
export const wakeChannel = 'agentyard_wake';

/** The listening connection's application_name, so that administrators (and tests) can find it in pg_stat_activity. */
export const listenerApplicationName = 'agentyard-notifications';

const firstRetryMs = 100;
const maxRetryMs = 2000;

export interface PostgresNotificationsOptions {
  url: string;
  /** The store's pool, for sending wakes. */
  db: Kysely<Database>;
  logger: Logger;
}

/**
 * Notifications between replicas over PostgreSQL LISTEN/NOTIFY. Sending goes through the store's pool (an event's
 * NOTIFY inside its append's transaction). Listening takes one connection of its own, outside the pool (a pooled
 * connection would be handed to other queries and lose its LISTEN), opened on the first subscription. When it drops,
 * it is opened again with a growing delay, and every onGap listener is called once it listens again; onGap listeners
 * are called after the first LISTEN too, since anything sent between subscribing and listening was missed.
 */
export class PostgresNotifications implements NotificationBackend {
  readonly #options: PostgresNotificationsOptions;
  readonly #events: ListenerSet<[string, number]>;
  readonly #wakes: ListenerSet<[string]>;
  readonly #gaps: ListenerSet<[]>;
  #started = false;
  #closed = false;
  #client: Client | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #retryMs = firstRetryMs;

  constructor(options: PostgresNotificationsOptions) {
    this.#options = options;
    this.#events = new ListenerSet(options.logger, 'event-appended');
    this.#wakes = new ListenerSet(options.logger, 'wake');
    this.#gaps = new ListenerSet(options.logger, 'gap');
  }

  onEventAppended(listener: (conversationId: string, seq: number) => void): () => void {
    return this.#subscribe(this.#events.add(listener));
  }

  onWake(listener: (conversationId: string) => void): () => void {
    return this.#subscribe(this.#wakes.add(listener));
  }

  onGap(listener: () => void): () => void {
    return this.#subscribe(this.#gaps.add(listener));
  }

  async wake(conversationId: string): Promise<void> {
    await sql`select pg_notify(${wakeChannel}, ${conversationId})`.execute(this.#options.db);
  }

  async eventAppending(transaction: Transaction<Database>, conversationId: string, seq: number): Promise<void> {
    await sql`select pg_notify(${eventsChannel}, ${`${conversationId} ${seq}`})`.execute(transaction);
  }

  eventAppended(): void {}

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => undefined);
  }

  #subscribe(unsubscribe: () => void): () => void {
    if (!this.#started && !this.#closed) {
      this.#started = true;
      void this.#listen();
    }
    return unsubscribe;
  }

  /** Opens the listening connection; on any failure, now or later, schedules the next attempt. */
  async #listen(): Promise<void> {
    let client: Client;
    try {
      const { default: pg } = await import('pg');
      client = new pg.Client({
        connectionString: this.#options.url,
        application_name: listenerApplicationName,
        // Lets the kernel notice a peer gone silent (no FIN) on an otherwise idle connection.
        keepAlive: true,
      });
    } catch (error) {
      this.#lost(error);
      return;
    }
    if (this.#closed) return;
    this.#client = client;
    let lost = false;
    const onLost = (error?: unknown): void => {
      if (lost) return;
      lost = true;
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      if (this.#client === client) this.#client = null;
      this.#lost(error);
    };
    // 'error' and 'end' both come when the server ends the connection; the flag handles it once.
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) => this.#dispatch(message));
    try {
      await client.connect();
      await client.query(`LISTEN ${eventsChannel}; LISTEN ${wakeChannel}`);
    } catch (error) {
      onLost(error);
      return;
    }
    if (lost || this.#closed) return;
    this.#retryMs = firstRetryMs;
    this.#gaps.call();
  }

  #lost(error: unknown): void {
    if (this.#closed) return;
    const delayMs = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, maxRetryMs);
    this.#options.logger.warn(
      { backend: 'postgres', error: error instanceof Error ? { message: error.message } : undefined, retryInMs: delayMs },
      'notification connection lost; listening again soon',
    );
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#listen();
    }, delayMs);
    // A store left unclosed must not keep the process alive just to listen.
    this.#retryTimer.unref();
  }

  #dispatch(message: Notification): void {
    const payload = message.payload ?? '';
    if (message.channel === eventsChannel) {
      const space = payload.lastIndexOf(' ');
      const seq = Number(payload.slice(space + 1));
      if (space > 0 && Number.isSafeInteger(seq)) this.#events.call(payload.slice(0, space), seq);
    } else if (message.channel === wakeChannel) {
      this.#wakes.call(payload);
    }
  }
}
