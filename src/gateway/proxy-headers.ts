import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** The platform's own Anthropic credential; it never enters a sandbox. */
export type ModelCredential = { kind: 'api-key' | 'oauth-token'; value: string };

/** The beta flag the API requires on requests authenticated with an OAuth access token. */
export const oauthBeta = 'oauth-2025-04-20';

// Connection-scoped headers (RFC 9110 §7.6.1) plus `host`, which the outgoing request sets itself.
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

function withoutHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name !== ''),
  );
  const result: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || hopByHop.has(name) || named.has(name)) continue;
    result[name] = value;
  }
  return result;
}

/**
 * The headers sent upstream: the client's own, minus connection-scoped ones and the sandbox token,
 * plus the platform credential. Compression is refused so usage can be read from the bytes as they pass.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, credential: ModelCredential): OutgoingHttpHeaders {
  const result = withoutHopByHop(headers);
  delete result['x-api-key'];
  delete result['authorization'];
  result['accept-encoding'] = 'identity';
  if (credential.kind === 'api-key') {
    result['x-api-key'] = credential.value;
  } else {
    result['authorization'] = `Bearer ${credential.value}`;
    result['anthropic-beta'] = mergeBetas(headers['anthropic-beta'], oauthBeta);
  }
  return result;
}

/** The upstream response headers relayed to the sandbox. */
export function downstreamResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return withoutHopByHop(headers);
}

function mergeBetas(sent: string | string[] | undefined, required: string): string {
  const betas = (Array.isArray(sent) ? sent.join(',') : (sent ?? ''))
    .split(',')
    .map((beta) => beta.trim())
    .filter((beta) => beta !== '');
  if (!betas.includes(required)) betas.push(required);
  return betas.join(',');
}

/** The sandbox token, from `x-api-key` (ANTHROPIC_API_KEY) or `Authorization: Bearer` (ANTHROPIC_AUTH_TOKEN). */
export function presentedToken(headers: IncomingHttpHeaders): string | null {
  const apiKey = typeof headers['x-api-key'] === 'string' ? headers['x-api-key'].trim() : '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
  const bearer = match?.[1] ?? '';
  // Both may be sent (apiKeyHelper does); then they must agree.
  if (apiKey !== '' && bearer !== '' && apiKey !== bearer) return null;
  return apiKey !== '' ? apiKey : bearer !== '' ? bearer : null;
}
