import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { AppError } from '../core/errors.ts';

const version = 'v1';
const ivBytes = 12;

/**
 * AES-256-GCM for secrets kept in the database. Each value is bound to its owner (the associated data), so a
 * ciphertext copied onto another user's row does not decrypt. The stored form names the key it was made with.
 */
export class CredentialCipher {
  /** A short fingerprint of the key, stored with each value to tell "wrong key" from "tampered". */
  readonly keyId: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new AppError('INTERNAL', 'the secret key must be 32 bytes');
    this.keyId = createHash('sha256').update('agentyard-credential-key').update(key).digest('hex').slice(0, 8);
  }

  /** `v1:<key id>:<iv>:<tag>:<ciphertext>`, base64url parts. */
  encrypt(plaintext: string, owner: string): string {
    const iv = randomBytes(ivBytes);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(owner, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [version, this.keyId, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join(':');
  }

  /** The plaintext; throws INTERNAL (never echoing the value) when the key differs or the value was altered. */
  decrypt(stored: string, owner: string): string {
    const [storedVersion, keyId, iv, tag, ciphertext] = stored.split(':');
    if (storedVersion !== version || !iv || !tag || ciphertext === undefined) {
      throw new AppError('INTERNAL', 'a stored credential has an unknown format');
    }
    if (keyId !== this.keyId) {
      throw new AppError('INTERNAL', 'a stored credential was encrypted with another secret key (was AGENTYARD_SECRET_KEY changed?)');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(owner, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch (cause) {
      throw new AppError('INTERNAL', 'a stored credential failed authentication (altered, or stored for another user)', undefined, { cause });
    }
  }
}
