import { describe, expect, it } from 'vitest';
import type { Principal } from '../accounts/accounts-service.ts';
import type { User } from '../core/types.ts';
import { LiveConnections } from './live-connections.ts';

const user = (id: string): User => ({ id, email: `${id}@example.com`, role: 'user', disabled: false, createdAt: '2025-06-01T00:00:00.000Z' });
const viaSession = (userId: string, sessionId: string): Principal => ({ user: user(userId), via: 'session', sessionId });
const viaToken = (userId: string, tokenId: string): Principal => ({ user: user(userId), via: 'token', tokenId });

describe('LiveConnections', () => {
  /** Tracks one connection per principal; answers which of them have been ended. */
  function trackAll(registry: LiveConnections, principals: Record<string, Principal>) {
    const ended: string[] = [];
    const connections = Object.fromEntries(Object.entries(principals).map(([name, principal]) => [name, registry.track(principal, () => ended.push(name))]));
    return { ended, connections };
  }

  const principals = {
    aliceLaptop: viaSession('alice', 'session-1'),
    alicePhone: viaSession('alice', 'session-2'),
    aliceToken: viaToken('alice', 'token-1'),
    bobLaptop: viaSession('bob', 'session-3'),
    bobToken: viaToken('bob', 'token-2'),
  };

  it('ends exactly the connections each kind of revocation covers, each once', async () => {
    const registry = new LiveConnections(async () => true);
    const { ended } = trackAll(registry, principals);
    await Promise.resolve();

    expect(registry.revoke({ kind: 'session', sessionId: 'session-1' })).toBe(1);
    expect(ended).toEqual(['aliceLaptop']);
    expect(registry.revoke({ kind: 'token', tokenId: 'token-2' })).toBe(1);
    expect(ended).toEqual(['aliceLaptop', 'bobToken']);
    // A password change: every browser session of the user, not their tokens.
    expect(registry.revoke({ kind: 'user-sessions', userId: 'alice' })).toBe(1);
    expect(ended).toEqual(['aliceLaptop', 'bobToken', 'alicePhone']);
    expect(registry.revoke({ kind: 'user', userId: 'alice' })).toBe(1);
    expect(ended).toEqual(['aliceLaptop', 'bobToken', 'alicePhone', 'aliceToken']);
    expect(registry.revoke({ kind: 'user', userId: 'alice' })).toBe(0);
    expect(registry.size).toBe(1);
  });

  it('forgets a released connection', () => {
    const registry = new LiveConnections(async () => true);
    const { ended, connections } = trackAll(registry, { aliceLaptop: principals.aliceLaptop });
    connections.aliceLaptop!.release();
    expect(registry.revoke({ kind: 'user', userId: 'alice' })).toBe(0);
    expect(ended).toEqual([]);
  });

  it('ends a connection whose credential was revoked between its authentication and its tracking', async () => {
    const revoked = new Set(['session-2']);
    const registry = new LiveConnections(async (principal) => !revoked.has(principal.sessionId ?? ''));
    const { ended } = trackAll(registry, { aliceLaptop: principals.aliceLaptop, alicePhone: principals.alicePhone });
    await new Promise((resolve) => setImmediate(resolve));
    expect(ended).toEqual(['alicePhone']);
    expect(registry.size).toBe(1);
  });
});
