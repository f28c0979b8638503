import { systemClock, type Clock } from '../core/clock.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { Store } from '../core/store.ts';

export interface GrantCleanerOptions {
  store: Pick<Store, 'claimTask' | 'releaseTask' | 'deleteStaleGatewayGrants'>;
  /** This replica's id: the cleaning runs on whichever replica holds the task. */
  replicaId: string;
  /** How often to look (default 60 s). */
  intervalMs?: number;
  /** A replica not heard from for this long is gone, and the grants it issued with it (default 5 minutes). */
  replicaGoneAfterMs?: number;
  /** How long revoked grants are kept, for inspection (default one day). */
  keepRevokedMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** What one pass did: whether this replica held the task, and how many grants it deleted. */
export interface CleaningPass {
  ran: boolean;
  deleted: number;
}

/**
 * Deletes the gateway grants nobody serves any more (their replica is gone) and the revoked ones past their keeping
 * time. Every replica runs a cleaner; the store's task claim lets one of them at a time do the work, and another
 * take over once it stops or dies.
 */
export class GrantCleaner {
  static readonly taskName = 'gateway-grant-cleaning';

  private readonly intervalMs: number;
  private readonly replicaGoneAfterMs: number;
  private readonly keepRevokedMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(private readonly options: GrantCleanerOptions) {
    this.intervalMs = options.intervalMs ?? 60_000;
    this.replicaGoneAfterMs = options.replicaGoneAfterMs ?? 5 * 60_000;
    this.keepRevokedMs = options.keepRevokedMs ?? 24 * 60 * 60_000;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  /** Cleans now (in the background) and then every interval. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    this.tick();
  }

  /** Stops cleaning, waits for a pass under way, and gives the task up so another replica takes it at its next look. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    await this.options.store.releaseTask(GrantCleaner.taskName, this.options.replicaId).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'could not give the grant cleaning up');
    });
  }

  /** One pass: claims the task (or renews it) and, when this replica holds it, deletes the stale grants. */
  async runOnce(): Promise<CleaningPass> {
    const { store, replicaId } = this.options;
    const now = this.clock();
    // Held for two intervals: the holder renews it at every pass, and one late pass does not hand it over.
    const held = await store.claimTask(GrantCleaner.taskName, replicaId, new Date(now).toISOString(), new Date(now + 2 * this.intervalMs).toISOString());
    if (!held) return { ran: false, deleted: 0 };
    const deleted = await store.deleteStaleGatewayGrants({
      replicaSeenBefore: new Date(now - this.replicaGoneAfterMs).toISOString(),
      revokedBefore: new Date(now - this.keepRevokedMs).toISOString(),
    });
    if (deleted > 0) this.logger.info({ deleted }, 'deleted stale gateway grants');
    return { ran: true, deleted };
  }

  private tick(): void {
    // A pass still under way (a slow database) is not overtaken by the next one.
    if (this.running) return;
    this.running = this.runOnce()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'gateway grant cleaning failed'))
      .finally(() => {
        this.running = null;
      });
  }
}
