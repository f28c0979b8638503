import type { Logger } from '../core/logger.ts';
import type { Fence, Store } from '../core/store.ts';

/**
 * The conversations this replica holds, each by a lease in the store: claimed before a turn runs, renewed together a
 * few times per lease period, given up when the conversation goes idle. When a renewal shows a lease gone (another
 * replica took it while this one was stopped or cut off), `onLost` is told at once; the store refuses the old
 * holder's writes anyway (the fencing token), so a late notice costs nothing but work.
 */
export class ConversationLeases {
  private readonly held = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private lostListener: (conversationId: string) => void = () => undefined;

  constructor(
    private readonly store: Store,
    readonly replicaId: string,
    readonly leaseMs: number,
    private readonly logger: Logger,
    /** No other process can hold a lease (SQLite's lock): one left in the store is a dead process's, taken at once. */
    private readonly singleProcess = false,
  ) {}

  onLost(listener: (conversationId: string) => void): void {
    this.lostListener = listener;
  }

  start(): void {
    this.timer = setInterval(() => void this.renew(), Math.max(300, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The fence of the conversation's lease if this replica holds it. */
  fenceOf(conversationId: string): Fence | null {
    const token = this.held.get(conversationId);
    return token === undefined ? null : { replicaId: this.replicaId, token };
  }

  get count(): number {
    return this.held.size;
  }

  conversations(): string[] {
    return [...this.held.keys()];
  }

  /**
   * Claims the conversation's lease; null when another replica holds it. `presumeExpired`: the holder is known to be
   * gone, so its lease is taken even before it expires.
   */
  async claim(conversationId: string, options: { presumeExpired?: boolean } = {}): Promise<{ fence: Fence; previousReplicaId: string | null } | null> {
    const before = await this.store.getLease(conversationId);
    const now = new Date();
    // A lease is taken when it expired "at `now`": for a holder known gone, that moment is just past its expiry.
    const presumeExpired = options.presumeExpired === true || this.singleProcess;
    const at = presumeExpired && before ? new Date(Math.max(now.getTime(), Date.parse(before.expiresAt) + 1)) : now;
    const lease = await this.store.claimLease(conversationId, this.replicaId, at.toISOString(), new Date(now.getTime() + this.leaseMs).toISOString());
    if (!lease) return null;
    this.held.set(conversationId, lease.token);
    const previousReplicaId = before && before.replicaId !== this.replicaId ? before.replicaId : null;
    return { fence: { replicaId: this.replicaId, token: lease.token }, previousReplicaId };
  }

  async release(conversationId: string): Promise<void> {
    const token = this.held.get(conversationId);
    if (token === undefined) return;
    this.held.delete(conversationId);
    await this.store
      .releaseLease({ conversationId, replicaId: this.replicaId, token })
      .catch((error: unknown) => this.logger.warn({ err: error, conversationId }, 'could not release the conversation’s lease'));
  }

  /** Forgets a lease without touching the store (it was found lost). */
  forget(conversationId: string): void {
    this.held.delete(conversationId);
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    // Only leases held before the renewal are judged by its answer: one claimed meanwhile may be missing from it.
    const before = [...this.held];
    try {
      const leases = await this.store.renewLeases(this.replicaId, new Date(Date.now() + this.leaseMs).toISOString());
      const still = new Map(leases.map((lease) => [lease.conversationId, lease.token]));
      for (const [conversationId, token] of before) {
        if (still.get(conversationId) === token || this.held.get(conversationId) !== token) continue;
        this.held.delete(conversationId);
        this.logger.warn({ conversationId }, 'lease lost: another replica holds the conversation');
        this.lostListener(conversationId);
      }
    } catch (error) {
      // The store is away. Nobody can take a lease over without it either, and once it is back the answer to the next
      // renewal says which leases are still this replica's; meanwhile the fencing token keeps a stale write out.
      this.logger.warn({ err: error }, 'could not renew the conversations’ leases');
    }
  }
}
