import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.ts';
import { CredentialCipher } from './credential-cipher.ts';

const secret = 'sk-ant-api03-users-own-key-0123456789';

describe('CredentialCipher', () => {
  const cipher = new CredentialCipher(randomBytes(32));

  it('round-trips a secret for its owner, with a fresh IV each time and no plaintext stored', () => {
    const first = cipher.encrypt(secret, 'usr_alice');
    const second = cipher.encrypt(secret, 'usr_alice');
    expect(first).not.toBe(second);
    expect(first).not.toContain(secret);
    expect(first).not.toContain(Buffer.from(secret).toString('base64url').slice(0, 12));
    expect(cipher.decrypt(first, 'usr_alice')).toBe(secret);
  });

  it('refuses a ciphertext moved to another user, altered, or made with another key, without echoing it', () => {
    const stored = cipher.encrypt(secret, 'usr_alice');
    const parts = stored.split(':');
    const flipped = Buffer.from(parts[4]!, 'base64url');
    flipped[0]! ^= 1;
    const altered = [...parts.slice(0, 4), flipped.toString('base64url')].join(':');
    for (const [value, owner] of [
      [stored, 'usr_bob'],
      [altered, 'usr_alice'],
      [new CredentialCipher(randomBytes(32)).encrypt(secret, 'usr_alice'), 'usr_alice'],
      ['garbage', 'usr_alice'],
    ] as const) {
      const error = (() => {
        try {
          cipher.decrypt(value, owner);
        } catch (caught) {
          return caught;
        }
        return null;
      })();
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).message).not.toContain(secret);
    }
  });
});
