import { newSecret } from '../core/ids.ts';
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
  /** The turn that usage is attributed to from now on; null between turns. */
  turnId: string | null;
  /** The parsed egress domains. */
  egress: EgressRule[];
  /** Model requests being answered right now. */
  inFlight: number;
}

/** The live per-sandbox tokens. A token is valid from `issue` until `revoke`, and nowhere else. */
export class TokenRegistry {
  private readonly entries = new Map<string, TokenEntry>();

  issue(grant: GatewayGrant): string {
    const token = newSecret('sbx');
    this.entries.set(token, { grant: { ...grant }, turnId: null, egress: parseEgressRules(grant.egressDomains ?? []), inFlight: 0 });
    return token;
  }

  lookup(token: string): TokenEntry | undefined {
    return this.entries.get(token);
  }

  /** Returns false for an unknown (or revoked) token. */
  setTurn(token: string, turnId: string | null): boolean {
    const entry = this.entries.get(token);
    if (!entry) return false;
    entry.turnId = turnId;
    return true;
  }

  /** Returns false for an unknown (or revoked) token. */
  setEgressDomains(token: string, domains: readonly string[]): boolean {
    const entry = this.entries.get(token);
    if (!entry) return false;
    entry.egress = parseEgressRules(domains);
    return true;
  }

  revoke(token: string): TokenEntry | undefined {
    const entry = this.entries.get(token);
    this.entries.delete(token);
    return entry;
  }

  tokens(): string[] {
    return [...this.entries.keys()];
  }
}
