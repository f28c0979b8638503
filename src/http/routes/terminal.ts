import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError, forbidden, unauthorized } from '../../core/errors.ts';
import { requireUser } from '../auth.ts';
import { idParams } from '../schemas.ts';
import type { App } from '../app.ts';
import { credentialKey, revokedMessage, type LiveConnections } from '../live-connections.ts';
import type { TerminalSession, TerminalSessions } from '../terminal-sessions.ts';

const querySchema = z.object({
  session: z
    .string()
    .regex(/^[A-Za-z0-9_-]{8,64}$/, '8-64 letters, digits, _ or -')
    .optional()
    .describe('the tab’s terminal id; reconnecting with the same id reattaches to the same shell'),
  offset: z.coerce.number().int().min(0).optional().describe('bytes of output this tab already shows, so a reconnect sends only what it missed'),
  cols: z.coerce.number().int().min(1).max(1000).default(80),
  rows: z.coerce.number().int().min(1).max(500).default(24),
});

const protocol = `A WebSocket (connect with \`Upgrade: websocket\`) to an interactive shell in the conversation's sandbox, the same one the agent uses.

Authenticated by the session cookie or an \`Authorization: Bearer\` token; a request that carries an \`Origin\` must come from this server's own origin, and a cookie-authenticated one must carry it.

- Client to server: binary frames are keyboard input; text frames are JSON: \`{"type":"resize","cols":N,"rows":N}\` or \`{"type":"input","data":"..."}\`.
- Server to client: binary frames are terminal output; text frames are JSON: \`{"type":"attached","session","start","resumed"}\` first (\`start\` is the output offset of the next binary byte; when it differs from the client's \`offset\` the client clears its screen), \`{"type":"exit","code","signal"}\` when the shell ends (then the socket closes with 1000), \`{"type":"error","code","message"}\`.
- A dropped socket leaves the shell running for a few minutes; reconnecting with the same \`session\` and \`offset\` resumes it. Close code 4001: the same session was opened in another tab.
- Close code 4401: the credential that opened the shell was revoked (signed out, token revoked, password changed, account disabled); the shell is killed.
- Terminals open at once are bounded per user and per conversation (429 TOO_MANY_TERMINALS); a terminal counts until its shell exits.`;

/** Sessions resolved before the upgrade, so that errors are plain HTTP answers. */
const opened = new WeakMap<FastifyRequest, TerminalSession>();

export function registerTerminalRoutes(app: App, { terminals, liveConnections }: { terminals: TerminalSessions; liveConnections: LiveConnections }): void {
  app.route({
    method: 'GET',
    url: '/api/conversations/:id/terminal',
    schema: {
      tags: ['terminal'],
      summary: 'An interactive shell in the conversation’s sandbox (WebSocket)',
      description: protocol,
      params: idParams,
      querystring: querySchema,
      response: { 101: z.null().describe('Switching Protocols: the socket is open') },
    },
    preHandler: async (request: FastifyRequest) => {
      const { id } = request.params as z.infer<typeof idParams>;
      const query = request.query as z.infer<typeof querySchema>;
      const user = requireUser(request);
      checkOrigin(request);
      if (!request.ws) throw new AppError('BAD_REQUEST', 'this route is a WebSocket: connect with Upgrade: websocket');
      const sessionId = query.session ?? crypto.randomUUID();
      const principal = request.principal!;
      // Tracked before the shell starts (which can take seconds), so a revocation meanwhile is not missed.
      let session: TerminalSession | null = null;
      let revoked = false;
      const connection = liveConnections.track(principal, () => {
        revoked = true;
        session?.revoke();
      });
      try {
        session = await terminals.open(user, id, sessionId, { cols: query.cols, rows: query.rows });
      } catch (error) {
        connection.release();
        throw error;
      }
      if (revoked) {
        session.revoke();
        throw unauthorized(revokedMessage);
      }
      session.holdCredential(credentialKey(principal), connection);
      opened.set(request, session);
    },
    handler: async () => {
      throw new AppError('BAD_REQUEST', 'this route is a WebSocket: connect with Upgrade: websocket');
    },
    wsHandler: (socket, request) => {
      const session = opened.get(request);
      if (!session) {
        socket.close(1011, 'terminal not opened');
        return;
      }
      session.attach(socket, (request.query as z.infer<typeof querySchema>).offset ?? null);
    },
  });
}

/**
 * Browsers send Origin on every WebSocket handshake and the socket is not bound by CORS: a page elsewhere could
 * otherwise open a shell with the user's cookie. A token-authenticated tool without Origin is fine.
 */
function checkOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin;
  if (origin === undefined) {
    if (request.principal?.via === 'session') throw forbidden('a terminal opened with the session cookie must send Origin');
    return;
  }
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw forbidden('the Origin header is not a URL');
  }
  if (host !== request.headers.host) throw forbidden(`WebSocket from another origin refused: ${origin}`);
}
