/**
 * Request targets a sandbox might send its gateway hoping that an upstream (or a proxy before it) normalises them into
 * another route than the one the gateway checked, each with the reason the gateway gives for refusing it
 * (src/gateway/request-path.ts). All but the last two are valid HTTP request targets.
 */
export const hostileRequestTargets: Array<[target: string, problem: string]> = [
  ['/v1/models/..', 'dot-segment'],
  ['/v1/models/.', 'dot-segment'],
  ['/v1/messages/../files', 'dot-segment'],
  ['/v1/./messages', 'dot-segment'],
  ['/v1//messages', 'empty-segment'],
  ['//v1/messages', 'empty-segment'],
  ['/v1/messages/', 'empty-segment'],
  ['/v1/models/%2e%2e', 'bad-character'],
  ['/v1/models/%2E', 'bad-character'],
  ['/v1/models/..%2f..%2fv1%2ffiles', 'bad-character'],
  ['/v1/models/%252e%252e', 'bad-character'],
  ['/v1/models\\..\\..\\files', 'bad-character'],
  ['/v1/models/%5c..', 'bad-character'],
  ['/v1/models/..;/files', 'bad-character'],
  ['/v1/models/claude"x', 'bad-character'],
  ['/v1/messages?', 'not-canonical'],
  ["/v1/messages?x='", 'not-canonical'],
  ['/v1/models/x#y', 'bad-character'],
  ['/v1/models/\u00e9', 'bad-character'],
];
