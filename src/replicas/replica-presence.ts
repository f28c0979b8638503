import { hostname } from 'node:os';
import type { Logger } from '../core/logger.ts';
import type { ReplicaRecord, Store } from '../core/store.ts';

export interface ReplicaIdentity {
  id: string;
  version: string;
  /** Where other replicas reach this one, or null. */
  url: string | null;
}

/** A replica as administrators see it: its last report, whether it is alive, and how many conversations it holds. */
export interface ReplicaStatus extends ReplicaRecord {
  live: boolean;
  leases: number;
}

/**
 * This process's row among the platform's replicas: registered at start, its heartbeat renewed a few times per lease
 * period, marked draining on shutdown and removed once it has handed everything over.
 */
export class ReplicaPresence {
  private timer: NodeJS.Timeout | null = null;
  private draining = false;
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly store: Store,
    readonly identity: ReplicaIdentity,
    private readonly leaseMs: number,
    private readonly logger: Logger,
  ) {}

  get id(): string {
    return this.identity.id;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Registers the replica; `heartbeat: false` when it is the only one there can be (SQLite), so nobody reads it. */
  async start(options: { heartbeat: boolean } = { heartbeat: true }): Promise<void> {
    await this.store.registerReplica({ ...this.identity, hostname: hostname(), pid: process.pid, startedAt: this.startedAt });
    if (!options.heartbeat) return;
    this.timer = setInterval(() => void this.beat(), Math.max(500, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  /** Records where other replicas reach this one, once the server listens (when not configured). */
  async setUrl(url: string): Promise<void> {
    if (this.identity.url) return;
    this.identity.url = url;
    await this.store.registerReplica({ ...this.identity, hostname: hostname(), pid: process.pid, startedAt: this.startedAt });
  }

  /** Marks the replica as shutting down: it is still alive, but takes no new turns. */
  async drain(): Promise<void> {
    this.draining = true;
    await this.beat();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.store.deleteReplica(this.identity.id).catch((error: unknown) => this.logger.warn({ err: error }, 'could not remove the replica’s row'));
  }

  /** Whether the replica's last heartbeat is recent enough for its leases to still be its. */
  isLive(replica: ReplicaRecord, now = Date.now()): boolean {
    return now - Date.parse(replica.heartbeatAt) < this.leaseMs;
  }

  private async beat(): Promise<void> {
    try {
      const present = await this.store.heartbeatReplica(this.identity.id, new Date().toISOString(), this.draining);
      // Removed by another replica that thought this one dead (it was stopped for a long time): register again.
      if (!present) await this.store.registerReplica({ ...this.identity, hostname: hostname(), pid: process.pid, startedAt: this.startedAt });
    } catch (error) {
      this.logger.warn({ err: error }, 'replica heartbeat failed');
    }
  }
}

/**
 * Whether a replica is certainly gone: it ran on this host and its process no longer exists. (A process with its pid
 * may be another program; then it is not known to be gone, and its leases are left to expire.)
 */
export function knownGone(replica: Pick<ReplicaRecord, 'id' | 'hostname' | 'pid'>, selfId: string): boolean {
  if (replica.id === selfId || replica.hostname !== hostname()) return false;
  // Another replica with this process's pid on this host was an earlier process (a restarted container's pid 1).
  if (replica.pid === process.pid) return true;
  try {
    process.kill(replica.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Whether the replica is gone: no row (it stopped cleanly, or was removed), a heartbeat older than the lease time, or
 * known gone on this host. Its sandboxes may then be removed by another replica.
 */
export async function replicaGone(store: Pick<Store, 'listReplicas'>, replicaId: string, leaseMs: number, selfId: string): Promise<boolean> {
  const replica = (await store.listReplicas()).find((candidate) => candidate.id === replicaId);
  if (!replica) return true;
  return Date.now() - Date.parse(replica.heartbeatAt) >= leaseMs || knownGone(replica, selfId);
}
