import { forbidden } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { Store } from '../core/store.ts';
import type { ModelCredentialKind } from '../core/types.ts';
import type { CredentialCipher } from './credential-cipher.ts';
import type { ModelCredential } from './proxy-headers.ts';

/** What may be shown about a user's own credential: never the value. */
export interface CredentialInfo {
  kind: ModelCredentialKind;
  createdAt: string;
  updatedAt: string;
}

/**
 * Users' own model credentials ("bring your own key"): encrypted at rest, decrypted only for the gateway, which
 * asks before every model request. A change applies to the next request; nothing needs a restart.
 */
export class UserCredentials {
  /** Decrypted credentials by user (null: none stored), filled on first use. */
  private readonly cache = new Map<string, ModelCredential | null>();
  private readonly logger: Logger;

  constructor(
    private readonly store: Store,
    private readonly cipher: CredentialCipher | null,
    logger: Logger = silentLogger,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.logger = logger;
  }

  /** Whether the server can store users' credentials (it has a secret key). */
  get enabled(): boolean {
    return this.cipher !== null;
  }

  async info(userId: string): Promise<CredentialInfo | null> {
    const stored = await this.store.getCredential(userId);
    return stored === null ? null : { kind: stored.kind, createdAt: stored.createdAt, updatedAt: stored.updatedAt };
  }

  /** Stores (or rotates) the user's credential. */
  async put(userId: string, credential: ModelCredential): Promise<CredentialInfo> {
    if (!this.cipher) throw forbidden('this server cannot store your own key: its administrator has not set AGENTYARD_SECRET_KEY');
    const stored = await this.store.putCredential({
      userId,
      kind: credential.kind,
      ciphertext: this.cipher.encrypt(credential.value, userId),
      updatedAt: this.now().toISOString(),
    });
    this.cache.set(userId, { kind: credential.kind, value: credential.value });
    this.logger.info({ userId, kind: credential.kind }, 'user credential stored');
    return { kind: stored.kind, createdAt: stored.createdAt, updatedAt: stored.updatedAt };
  }

  async delete(userId: string): Promise<boolean> {
    const deleted = await this.store.deleteCredential(userId);
    this.cache.set(userId, null);
    if (deleted) this.logger.info({ userId }, 'user credential deleted');
    return deleted;
  }

  /** The user's own credential in clear, for the gateway; null when they have none. */
  async credentialFor(userId: string): Promise<ModelCredential | null> {
    const cached = this.cache.get(userId);
    if (cached !== undefined) return cached;
    const stored = await this.store.getCredential(userId);
    let credential: ModelCredential | null = null;
    if (stored !== null) {
      if (!this.cipher) throw forbidden('a stored user credential cannot be used: AGENTYARD_SECRET_KEY is not set');
      credential = { kind: stored.kind, value: this.cipher.decrypt(stored.ciphertext, userId) };
    }
    // A concurrent put/delete may have filled the cache meanwhile; it is newer.
    if (!this.cache.has(userId)) this.cache.set(userId, credential);
    return this.cache.get(userId) ?? null;
  }
}
