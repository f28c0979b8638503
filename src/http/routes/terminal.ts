import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError, forbidden, unauthorized } from '../../core/errors.ts';
import { requireUser } from '../auth.ts';
import { idParams } from '../schemas.ts';
import type { App } from '../app.ts';
import { credentialKey, revokedMessage, type LiveConnections } from '../live-connections.ts';
import type { TerminalSession, TerminalSessions } from '../terminal-sessions.ts';
import { hereOrAtHolder, holderForwarding, HolderRefusal, sendHolderAnswer, TerminalRelay, type Holder } from '../holder-forwarding.ts';
import type { ConversationsService } from '../../conversations/conversations-service.ts';

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
- Terminals open at once are bounded per user and per conversation (429 TOO_MANY_TERMINALS); a terminal counts until its shell exits.
- Any server replica takes the socket: one that does not run the conversation's sandbox relays it, frames and close codes unchanged, to the replica that does.`;

/** Sessions resolved before the upgrade, so that errors are plain HTTP answers. */
const opened = new WeakMap<FastifyRequest, TerminalSession>();
/** Terminals whose shell runs on the replica holding the sandbox, connected there before the upgrade. */
const relayed = new WeakMap<FastifyRequest, TerminalRelay>();

export function registerTerminalRoutes(
  app: App,
  {
    terminals,
    liveConnections,
    conversations,
    replicaId,
  }: { terminals: TerminalSessions; liveConnections: LiveConnections; conversations: ConversationsService; replicaId: string },
): void {
  const forwarding = holderForwarding(conversations, replicaId);
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
    preHandler: async (request: FastifyRequest, reply: FastifyReply) => {
      const { id } = request.params as z.infer<typeof idParams>;
      const query = request.query as z.infer<typeof querySchema>;
      const user = requireUser(request);
      checkOrigin(request);
      if (!request.ws) throw new AppError('BAD_REQUEST', 'this route is a WebSocket: connect with Upgrade: websocket');
      const sessionId = query.session ?? crypto.randomUUID();
      const principal = request.principal!;
      // The owner is checked here before anything goes to another replica, which checks everything again.
      await conversations.get(user, id);
      const openHere = async (): Promise<void> => {
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
      };
      const openThere = async (holder: Holder): Promise<void> => {
        const slot = terminals.holdRelayed(user, id, sessionId);
        let relay: TerminalRelay | null = null;
        let revoked = false;
        const connection = liveConnections.track(principal, () => {
          revoked = true;
          relay?.revoke();
        });
        try {
          relay = await TerminalRelay.open(request, holder, replicaId);
        } catch (error) {
          slot.release();
          connection.release();
          throw error;
        }
        relay.onEnd(() => {
          slot.release();
          connection.release();
        });
        if (revoked) {
          relay.close();
          throw unauthorized(revokedMessage);
        }
        relay.watch(request);
        relayed.set(request, relay);
      };
      try {
        await hereOrAtHolder(forwarding, request, id, () => openHere(), openThere);
      } catch (error) {
        if (error instanceof HolderRefusal) return sendHolderAnswer(reply, error.answer);
        throw error;
      }
      return undefined;
    },
    handler: async () => {
      throw new AppError('BAD_REQUEST', 'this route is a WebSocket: connect with Upgrade: websocket');
    },
    wsHandler: (socket, request) => {
      const relay = relayed.get(request);
      if (relay) return relay.attach(socket);
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
