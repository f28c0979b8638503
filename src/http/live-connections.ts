import type { FastifyRequest } from 'fastify';
import type { Principal, Revocation } from '../accounts/accounts-service.ts';
import { unauthorized } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/logger.ts';

/** A stream or socket being tracked. */
export interface LiveConnection {
  /** Stops tracking it: it ended on its own. */
  release(): void;
}

interface Entry {
  userId: string;
  via: Principal['via'];
  /** The session id (hash of the cookie secret) or the API token id. */
  credentialId: string;
  end: () => void;
}

declare module 'fastify' {
  interface FastifyInstance {
    liveConnections: LiveConnections;
  }
}

/** The message a connection ends with when its credential is revoked. */
export const revokedMessage = 'your sign-in ended (signed out, token revoked, password changed or account disabled); sign in again';

/**
 * The event streams and terminal sockets open right now, by the credential (browser session or API token) and user
 * that opened them, so that revoking a credential ends at once everything it opened.
 */
export class LiveConnections {
  private readonly entries = new Set<Entry>();

  constructor(
    /** Whether the principal's credential still holds (checked again once each connection is tracked). */
    private readonly stillValid: (principal: Principal) => Promise<boolean>,
    private readonly logger: Logger = silentLogger,
  ) {}

  /**
   * Tracks a connection opened by `principal`; `end` runs once, as soon as its credential is revoked. The credential
   * is checked again after tracking has started, so one revoked between the request's authentication and this call
   * ends the connection too.
   */
  track(principal: Principal, end: () => void): LiveConnection {
    const credentialId = principal.via === 'session' ? principal.sessionId : principal.tokenId;
    if (credentialId === undefined) throw unauthorized('sign in or send an API token');
    const entry: Entry = { userId: principal.user.id, via: principal.via, credentialId, end };
    this.entries.add(entry);
    this.stillValid(principal).then(
      (valid) => {
        if (!valid) this.finish(entry);
      },
      (error: unknown) => this.logger.error({ err: error, userId: entry.userId }, 'could not check a live connection’s credential'),
    );
    return { release: () => void this.entries.delete(entry) };
  }

  /** Ends every connection the revocation covers; answers how many. */
  revoke(revocation: Revocation): number {
    let ended = 0;
    for (const entry of [...this.entries]) {
      if (!covers(revocation, entry)) continue;
      this.finish(entry);
      ended += 1;
    }
    if (ended > 0) this.logger.info({ revocation: revocation.kind, ended }, 'connections of a revoked credential ended');
    return ended;
  }

  /** Connections tracked now. */
  get size(): number {
    return this.entries.size;
  }

  private finish(entry: Entry): void {
    if (!this.entries.delete(entry)) return;
    try {
      entry.end();
    } catch (error) {
      this.logger.error({ err: error, userId: entry.userId }, 'could not end a connection of a revoked credential');
    }
  }
}

function covers(revocation: Revocation, entry: Entry): boolean {
  switch (revocation.kind) {
    case 'session':
      return entry.via === 'session' && entry.credentialId === revocation.sessionId;
    case 'token':
      return entry.via === 'token' && entry.credentialId === revocation.tokenId;
    case 'user-sessions':
      return entry.via === 'session' && entry.userId === revocation.userId;
    case 'user':
      return entry.userId === revocation.userId;
  }
}

/** Names the credential a principal was made from: `session:<id>` or `token:<id>`. */
export function credentialKey(principal: Principal): string {
  return `${principal.via}:${principal.via === 'session' ? principal.sessionId : principal.tokenId}`;
}

/** Tracks a connection opened by the request's caller (see LiveConnections.track); the caller must be signed in. */
export function trackConnection(request: FastifyRequest, end: () => void): LiveConnection {
  if (!request.principal) throw unauthorized('sign in or send an API token');
  return request.server.liveConnections.track(request.principal, end);
}
