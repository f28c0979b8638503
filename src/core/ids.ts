import { randomBytes, randomUUID } from 'node:crypto';

/** A new opaque id with a readable prefix, e.g. `conv_3f9a…`. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

/** A random secret for tokens and cookies (256 bits). */
export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export { randomUUID };
