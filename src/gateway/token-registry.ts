import { newSecret } from '../core/ids.ts';

/** Who a sandbox token speaks for. */
export interface GatewayGrant {
  sandboxId: string;
  userId: string;
  conversationId: string;
}

export interface TokenEntry {
  readonly grant: GatewayGrant;
  /** The turn that usage is attributed to from now on; null between turns. */
  turnId: string | null;
}

/** The live per-sandbox tokens. A token is valid from `issue` until `revoke`, and nowhere else. */
export class TokenRegistry {
  private readonly entries = new Map<string, TokenEntry>();

  issue(grant: GatewayGrant): string {
    const token = newSecret('sbx');
    this.entries.set(token, { grant: { ...grant }, turnId: null });
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

  revoke(token: string): TokenEntry | undefined {
    const entry = this.entries.get(token);
    this.entries.delete(token);
    return entry;
  }

  tokens(): string[] {
    return [...this.entries.keys()];
  }
}
