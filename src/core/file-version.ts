import { createHash } from 'node:crypto';

/**
 * The version of a workspace file's content: its ETag, and what `If-Match` compares against. A hash of the bytes,
 * so a rewrite within the same second and at the same size still counts as a change.
 */
export function workspaceFileVersion(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url');
}
