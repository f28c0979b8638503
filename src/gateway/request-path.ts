/**
 * The request target of a sandbox's model request, accepted only in its one plain spelling, so that the path the
 * gateway checks against its allowlist is exactly the path the upstream will resolve.
 *
 * Refused: dot segments (`.`, `..`), empty segments (`//`, a trailing `/`), backslashes, any `%` (so no encoded
 * separator or dot, at any depth of encoding), characters outside a small safe set, and anything a WHATWG URL parser
 * would rewrite. An upstream (or a proxy before it) that normalises paths could otherwise turn an allowed-looking
 * path into another route, as `/v1/models/..` into `/v1`.
 */

/** A request target split into its checked path and its query (with the `?`, or empty). */
export interface RequestTarget {
  path: string;
  query: string;
}

/**
 * Letters, digits and `-._~:@`: enough for every route and model id. No `%`, no `\`, and no `;` either (some servers
 * read `..;` as `..`).
 */
const segmentPattern = /^[A-Za-z0-9._~:@-]+$/;
/** A query of visible ASCII without `#`. */
const queryPattern = /^[\x21-\x22\x24-\x7e]*$/;

/** Why a target was refused, for the 400's message. */
export type PathProblem = 'not-origin-form' | 'dot-segment' | 'empty-segment' | 'bad-character' | 'not-canonical';

/** The target's path and query when the target is in plain, canonical form; otherwise what is wrong with it. */
export function checkRequestTarget(target: string): RequestTarget | { problem: PathProblem } {
  if (!target.startsWith('/')) return { problem: 'not-origin-form' };
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = queryAt === -1 ? '' : target.slice(queryAt);
  if (path !== '/') {
    for (const segment of path.slice(1).split('/')) {
      if (segment === '') return { problem: 'empty-segment' };
      if (segment === '.' || segment === '..') return { problem: 'dot-segment' };
      if (!segmentPattern.test(segment)) return { problem: 'bad-character' };
    }
  }
  if (!queryPattern.test(query.slice(1))) return { problem: 'bad-character' };
  // The last word: a WHATWG parser must leave the target exactly as it is.
  let parsed: URL;
  try {
    parsed = new URL(target, 'http://gateway.invalid');
  } catch {
    return { problem: 'not-canonical' };
  }
  if (parsed.pathname !== path || parsed.search !== query) return { problem: 'not-canonical' };
  return { path, query };
}

const messages: Record<PathProblem, string> = {
  'not-origin-form': 'the request target must be a path',
  'dot-segment': 'the path may not contain . or .. segments',
  'empty-segment': 'the path may not contain empty segments',
  'bad-character': 'the path may contain only letters, digits and -._~:@ (no %, no \\)',
  'not-canonical': 'the path is not in canonical form',
};

/** A sentence for the sandbox saying why its path was refused. */
export function describePathProblem(problem: PathProblem): string {
  return messages[problem];
}
