import type { Store } from '../core/store.ts';
import type { ReplicaPresence, ReplicaStatus } from './replica-presence.ts';

/** The platform's replicas as administrators see them (GET /api/admin/replicas). */
export class ReplicaDirectory {
  constructor(
    private readonly store: Store,
    private readonly presence: ReplicaPresence,
  ) {}

  /** Every replica with a row: the live ones, and dead ones until another replica's start-up removes them. */
  async list(): Promise<ReplicaStatus[]> {
    const [replicas, leases] = await Promise.all([this.store.listReplicas(), this.store.countLeasesByReplica()]);
    const now = Date.now();
    return replicas
      // The replica answering is alive, whatever its last heartbeat (SQLite's single server keeps none).
      .map((replica) => ({ ...replica, live: replica.id === this.presence.id || this.presence.isLive(replica, now), leases: leases[replica.id] ?? 0 }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}
