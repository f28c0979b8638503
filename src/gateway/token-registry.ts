import { createHash } from 'node:crypto';
import { nowIso } from '../core/clock.ts';
import { newSecret } from '../core/ids.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { Store, StoredGatewayGrant } from '../core/store.ts';
import { parseEgressRules, type EgressRule } from './egress-policy.ts';

/** Who a sandbox token speaks for. */
export interface GatewayGrant {
  sandboxId: string;
  userId: string;
  conversationId: string;
  /** The agent the conversation runs, for usage attribution. */
  agentId?: string | null;
  /** The agent's egress domains when the sandbox started; `setEgressDomains` replaces them. None: no egress. */
  egressDomains?: readonly string[];
}

export interface TokenEntry {
  readonly grant: GatewayGrant;
  /** The replica that issued the token (and serves the sandbox's socket). */
  readonly replicaId: string;
  /** The turn that usage is attributed to from now on; null between turns. */
  turnId: string | null;
  /** The egress domains in force (the grant's, until `setEgressDomains`) and their parsed rules. */
  egressDomains: readonly string[];
  egress: EgressRule[];
  /** Model requests being answered right now (on this replica). */
  inFlight: number;
}

/** The part of the store that keeps grants for the other replicas. */
export type GrantStore = Pick<Store, 'createGatewayGrant' | 'getGatewayGrant' | 'updateGatewayGrant' | 'revokeGatewayGrant'>;

/** Keeps nothing: grants live in this process only. Enough for one replica, and the default. */
export const memoryOnlyGrants: GrantStore = {
  createGatewayGrant: async (grant) => ({ ...grant, turnId: null, revokedAt: null }),
  getGatewayGrant: async () => null,
  updateGatewayGrant: async () => false,
  revokeGatewayGrant: async () => false,
};

/** How a token is known in the store: its SHA-256, so that a copy of the table grants nothing. */
export function hashSandboxToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface TokenRegistryOptions {
  /** Where grants are kept for the other replicas; default: nowhere (`memoryOnlyGrants`). */
  store?: GrantStore;
  /** Recorded with every grant, so that grants of a replica that is gone can be cleaned away. */
  replicaId?: string;
  /** How long `revoke` waits for the store before it gives up waiting (default 5 s); the write goes on. */
  storeWaitMs?: number;
  logger?: Logger;
}

/**
 * The live per-sandbox tokens. A token is valid from `issue` until `revoke`, and nowhere else. Every grant is kept in
 * memory, which answers the replica serving the sandbox's socket (`lookup`), and in the store by token hash, which
 * answers any other replica (`resolve`).
 */
export class TokenRegistry {
  private readonly entries = new Map<string, TokenEntry>();
  /** The latest store write of each token; every write waits for the one before, so they land in order. */
  private readonly writes = new Map<string, Promise<void>>();
  private readonly store: GrantStore;
  private readonly replicaId: string;
  private readonly storeWaitMs: number;
  private readonly logger: Logger;

  constructor(options: TokenRegistryOptions = {}) {
    this.store = options.store ?? memoryOnlyGrants;
    this.replicaId = options.replicaId ?? 'local';
    this.storeWaitMs = options.storeWaitMs ?? 5_000;
    this.logger = options.logger ?? silentLogger;
  }

  /** A new token for the grant, stored before it is returned so that any replica knows it from its first use. */
  async issue(grant: GatewayGrant): Promise<string> {
    const token = newSecret('sbx');
    const egressDomains = [...(grant.egressDomains ?? [])];
    await this.store.createGatewayGrant({
      tokenHash: hashSandboxToken(token),
      sandboxId: grant.sandboxId,
      userId: grant.userId,
      conversationId: grant.conversationId,
      agentId: grant.agentId ?? null,
      replicaId: this.replicaId,
      egressDomains,
      createdAt: nowIso(),
    });
    this.entries.set(token, {
      grant: { ...grant },
      replicaId: this.replicaId,
      turnId: null,
      egressDomains,
      egress: parseEgressRules(egressDomains),
      inFlight: 0,
    });
    return token;
  }

  /** A token this replica issued and has not revoked; memory only, so an unknown token costs no query. */
  lookup(token: string): TokenEntry | undefined {
    return this.entries.get(token);
  }

  /**
   * The entry of a live token, whichever replica issued it: from memory when it is this one's, else from the store by
   * the token's hash. A stored grant is read anew on every call (its turn and egress domains change while the
   * sandbox lives), and its `inFlight` counts only this call's requests.
   */
  async resolve(token: string): Promise<TokenEntry | undefined> {
    const local = this.entries.get(token);
    if (local) return local;
    const stored = await this.store.getGatewayGrant(hashSandboxToken(token));
    if (stored === null || stored.revokedAt !== null) return undefined;
    return storedEntry(stored);
  }

  /** Returns false for an unknown (or revoked) token. */
  setTurn(token: string, turnId: string | null): boolean {
    const entry = this.entries.get(token);
    if (!entry) return false;
    entry.turnId = turnId;
    void this.persist(token, entry, 'set the turn of', (tokenHash) => this.store.updateGatewayGrant(tokenHash, { turnId }));
    return true;
  }

  /** Returns false for an unknown (or revoked) token. */
  setEgressDomains(token: string, domains: readonly string[]): boolean {
    const entry = this.entries.get(token);
    if (!entry) return false;
    const egressDomains = [...domains];
    entry.egressDomains = egressDomains;
    entry.egress = parseEgressRules(egressDomains);
    void this.persist(token, entry, 'set the egress domains of', (tokenHash) => this.store.updateGatewayGrant(tokenHash, { egressDomains }));
    return true;
  }

  /**
   * The token stops working here at once; the returned promise resolves once the store has it revoked too, or the
   * attempt failed (logged: the grant is then cleaned away with its replica), or after `storeWaitMs`: a database that
   * does not answer must not hold up the sandbox's teardown.
   */
  async revoke(token: string): Promise<TokenEntry | undefined> {
    const entry = this.entries.get(token);
    this.entries.delete(token);
    if (!entry) return undefined;
    const revokedAt = nowIso();
    const revoked = this.persist(token, entry, 'revoke', (tokenHash) => this.store.revokeGatewayGrant(tokenHash, revokedAt));
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), this.storeWaitMs)));
    const outcome = await Promise.race([revoked, waited]);
    clearTimeout(timer);
    if (outcome === 'late') {
      this.logger.warn({ sandboxId: entry.grant.sandboxId, storeWaitMs: this.storeWaitMs }, 'the store has not revoked the gateway grant yet; going on');
    }
    return entry;
  }

  tokens(): string[] {
    return [...this.entries.keys()];
  }

  /** Queues a store write behind the token's earlier ones; a failure is logged, never thrown. */
  private persist(token: string, entry: TokenEntry, action: string, write: (tokenHash: string) => Promise<unknown>): Promise<void> {
    const tokenHash = hashSandboxToken(token);
    const previous = this.writes.get(token) ?? Promise.resolve();
    const next = previous
      .then(() => write(tokenHash))
      .then(
        () => undefined,
        (error: unknown) => {
          this.logger.warn({ err: error, sandboxId: entry.grant.sandboxId }, `could not ${action} the stored gateway grant`);
        },
      )
      .finally(() => {
        if (this.writes.get(token) === next) this.writes.delete(token);
      });
    this.writes.set(token, next);
    return next;
  }
}

function storedEntry(stored: StoredGatewayGrant): TokenEntry {
  return {
    grant: {
      sandboxId: stored.sandboxId,
      userId: stored.userId,
      conversationId: stored.conversationId,
      agentId: stored.agentId,
      egressDomains: stored.egressDomains,
    },
    replicaId: stored.replicaId,
    turnId: stored.turnId,
    egressDomains: stored.egressDomains,
    egress: parseEgressRules(stored.egressDomains),
    inFlight: 0,
  };
}
