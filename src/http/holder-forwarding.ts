import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import WebSocket from 'ws';
import type { ConversationsService } from '../conversations/conversations-service.ts';
import { AppError } from '../core/errors.ts';
import { sessionCookie } from './auth.ts';
import { revokedMessage } from './live-connections.ts';

/**
 * Sent on a request one replica forwards to another. A request carrying it is served where it lands or refused,
 * never forwarded again, so two replicas that disagree about the holder cannot bounce it between them. It only
 * prevents forwarding: identity still comes from the caller's own credential, which the holder checks itself.
 */
export const forwardedHeader = 'x-agentyard-forwarded';

/** The replica holding a conversation's lease, where its sandbox runs, and the base URL it is reached at. */
export interface Holder {
  replicaId: string;
  url: string;
}

/** What forwarding needs to know: this replica's id and who holds a conversation. */
export interface HolderForwarding {
  replicaId: string;
  remoteHolder(conversationId: string): Promise<Holder | null>;
}

export function holderForwarding(conversations: Pick<ConversationsService, 'remoteHolder'>, replicaId: string): HolderForwarding {
  return { replicaId, remoteHolder: (conversationId) => conversations.remoteHolder(conversationId) };
}

/** An answer of the holder other than a successful upgrade, passed to the caller as it came. */
export interface HolderAnswer {
  status: number;
  contentType: string | null;
  retryAfter: string | null;
  body: string;
}

/** The holder refused to open the terminal: its answer goes to the caller unchanged. */
export class HolderRefusal extends Error {
  constructor(readonly answer: HolderAnswer) {
    super(`the holder replica answered ${answer.status}`);
  }
}

/** Interrupting may wait for the agent to stop; opening a terminal may wait for the sandbox to start. */
const requestTimeoutMs = 30_000;
const handshakeTimeoutMs = 60_000;
/** Holder answers are small JSON bodies; anything past this is cut rather than held in memory. */
const maxAnswerBytes = 64 * 1024;
const highWaterBytes = 1024 * 1024;
const lowWaterBytes = 256 * 1024;

/** Whether another replica forwarded this request (it must not be forwarded again). */
export function wasForwarded(request: FastifyRequest): boolean {
  return request.headers[forwardedHeader] !== undefined;
}

/**
 * Runs `here` unless another live replica holds the conversation, in which case `there` forwards to it. The caller
 * has authenticated the request and checked that the user owns the conversation. A lease taken by another replica
 * while `here` was starting shows as SANDBOX_UNAVAILABLE: the holder is looked up again and the request forwarded.
 * A request that was already forwarded is served here or refused with 503.
 */
export async function hereOrAtHolder<T>(
  forwarding: HolderForwarding,
  request: FastifyRequest,
  conversationId: string,
  here: () => Promise<T>,
  there: (holder: Holder) => Promise<T>,
): Promise<T> {
  const forwarded = wasForwarded(request);
  if (!forwarded) {
    const holder = await forwarding.remoteHolder(conversationId);
    if (holder) return there(holder);
  }
  try {
    return await here();
  } catch (error) {
    if (!(error instanceof AppError) || error.code !== 'SANDBOX_UNAVAILABLE') throw error;
    const holder = await forwarding.remoteHolder(conversationId).catch(() => null);
    if (!holder) throw error;
    if (forwarded) {
      throw new AppError(
        'SANDBOX_UNAVAILABLE',
        'this request was forwarded by another server replica, but the conversation’s sandbox is not on this one either (it moved meanwhile); try again',
      );
    }
    return there(holder);
  }
}

/**
 * Sends the request as it came (method, path and query, JSON body) to the holder, with the caller's own credential,
 * and returns the holder's answer. A holder that does not answer is SANDBOX_UNAVAILABLE: its lease expires and the
 * conversation moves, so trying again later works.
 */
export async function forwardRequest(request: FastifyRequest, holder: Holder, replicaId: string): Promise<HolderAnswer> {
  const headers = holderHeaders(request, holder, replicaId);
  let body: string | undefined;
  if (request.body !== undefined && request.body !== null) {
    body = JSON.stringify(request.body);
    headers['content-type'] = 'application/json';
  }
  let response: Response;
  try {
    response = await fetch(`${holder.url}${request.url}`, {
      method: request.method,
      headers,
      ...(body === undefined ? {} : { body }),
      redirect: 'manual',
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
  } catch (error) {
    throw unreachable(holder, error);
  }
  const answer: HolderAnswer = {
    status: response.status,
    contentType: response.headers.get('content-type'),
    retryAfter: response.headers.get('retry-after'),
    body: (await response.text().catch(() => '')).slice(0, maxAnswerBytes),
  };
  request.log.info({ holder: holder.replicaId, status: answer.status }, 'request forwarded to the replica holding the conversation');
  return answer;
}

/** Answers with the holder's status and body. */
export function sendHolderAnswer(reply: FastifyReply, answer: HolderAnswer): FastifyReply {
  void reply.status(answer.status);
  if (answer.contentType) void reply.header('content-type', answer.contentType);
  if (answer.retryAfter) void reply.header('retry-after', answer.retryAfter);
  return reply.send(answer.body);
}

/**
 * The headers a forwarded request carries: the caller's own credential exactly as it came (the bearer token, or
 * the session cookie alone), the loop guard, and, when the caller sent an Origin (checked here against this
 * replica's origin), the holder's own origin so that its same-origin checks pass.
 */
function holderHeaders(request: FastifyRequest, holder: Holder, replicaId: string): Record<string, string> {
  const headers: Record<string, string> = { [forwardedHeader]: replicaId };
  const authorization = request.headers.authorization;
  const session = request.cookies[sessionCookie];
  if (authorization !== undefined) headers.authorization = authorization;
  else if (session !== undefined) headers.cookie = `${sessionCookie}=${session}`;
  if (request.headers.origin !== undefined) headers.origin = new URL(holder.url).origin;
  return headers;
}

function unreachable(holder: Holder, error: unknown): AppError {
  return new AppError(
    'SANDBOX_UNAVAILABLE',
    `the server replica running the conversation’s sandbox (${holder.replicaId}) did not answer; try again`,
    { replicaId: holder.replicaId },
    { cause: error },
  );
}

/**
 * A terminal whose shell runs on the holder replica, shown through this one: a WebSocket to the holder's terminal
 * route, piped frame for frame to the caller's socket once it is upgraded. Binary and text frames pass unchanged,
 * close codes pass both ways, and a side that cannot keep up pauses reading from the other.
 */
export class TerminalRelay {
  private client: WebSocket | null = null;
  /** Frames the holder sent before the caller's socket was upgraded (the `attached` message, the scrollback). */
  private early: Array<{ data: Buffer; isBinary: boolean }> = [];
  /** How the holder's socket closed before the caller's was attached, to close that one the same way. */
  private upstreamClosed: { code: number; reason: Buffer } | null = null;
  private revoked = false;
  private ended = false;
  private readonly endListeners: Array<() => void> = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly upstream: WebSocket,
    private readonly logger: FastifyBaseLogger,
  ) {
    // Nothing is read from the holder until the caller's socket can take it (a few frames may still come).
    upstream.pause();
    upstream.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (!this.client) this.early.push({ data: toBuffer(data), isBinary });
    });
    upstream.on('close', (code: number, reason: Buffer) => {
      if (this.client) closeLike(this.client, code, reason);
      else this.upstreamClosed = { code, reason };
      this.end();
    });
    upstream.on('error', (error: Error) => this.logger.warn({ err: error }, 'the relayed terminal socket to the holder replica failed'));
  }

  /**
   * Opens the holder's terminal with the caller's credential and the same query string. Rejects with HolderRefusal
   * when the holder answers the upgrade with an error, with SANDBOX_UNAVAILABLE when it cannot be reached.
   */
  static open(request: FastifyRequest, holder: Holder, replicaId: string): Promise<TerminalRelay> {
    const target = `${holder.url.replace(/^http/, 'ws')}${request.url}`;
    const logger = request.log.child({ holder: holder.replicaId });
    const upstream = new WebSocket(target, { headers: holderHeaders(request, holder, replicaId), handshakeTimeout: handshakeTimeoutMs });
    return new Promise<TerminalRelay>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        outcome();
      };
      // Kept for the socket's whole life: a failed handshake can emit more than once, and an unheard error would throw.
      upstream.on('error', (error: Error) => settle(() => reject(unreachable(holder, error))));
      upstream.once('unexpected-response', (upgradeRequest, response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          if (size < maxAnswerBytes) chunks.push(chunk);
          size += chunk.length;
        });
        response.on('error', (error: Error) => settle(() => reject(unreachable(holder, error))));
        response.on('end', () => {
          const retryAfter = response.headers['retry-after'];
          const answer: HolderAnswer = {
            status: response.statusCode ?? 502,
            contentType: response.headers['content-type'] ?? null,
            retryAfter: typeof retryAfter === 'string' ? retryAfter : null,
            body: Buffer.concat(chunks).toString('utf8').slice(0, maxAnswerBytes),
          };
          logger.info({ status: answer.status }, 'the holder replica refused the relayed terminal');
          settle(() => reject(new HolderRefusal(answer)));
          upgradeRequest.destroy();
        });
      });
      upstream.once('open', () => {
        logger.info('terminal relayed to the replica holding the conversation');
        settle(() => resolve(new TerminalRelay(upstream, logger)));
      });
    });
  }

  /** Runs `listener` once the relay is over (either side closed, or it was never attached). */
  onEnd(listener: () => void): void {
    if (this.ended) listener();
    else this.endListeners.push(listener);
  }

  /**
   * Pipes the caller's upgraded socket to the holder's. Until then, frames from the holder wait; `request`'s
   * connection going away first (the upgrade never completing) ends the relay.
   */
  watch(request: FastifyRequest): void {
    const abandon = (): void => {
      if (!this.client) this.close();
    };
    request.raw.socket.once('close', abandon);
    const timer = setTimeout(abandon, handshakeTimeoutMs);
    timer.unref();
    this.timers.add(timer);
  }

  attach(client: WebSocket): void {
    if (this.revoked) return refuse(client);
    if (this.client) return client.close(1011, 'terminal relayed twice');
    this.client = client;
    for (const frame of this.early) client.send(frame.data, { binary: frame.isBinary });
    this.early = [];
    if (this.upstreamClosed) {
      closeLike(client, this.upstreamClosed.code, this.upstreamClosed.reason);
      return;
    }
    this.upstream.resume();
    this.relay(client, this.upstream);
    this.relay(this.upstream, client);
    client.on('close', (code: number, reason: Buffer) => {
      closeLike(this.upstream, code, reason);
      this.end();
    });
    client.on('error', (error: Error) => this.logger.debug({ err: error }, 'the caller’s relayed terminal socket failed'));
  }

  /** The caller's credential was revoked here: the caller's socket closes with 4401, and so does the relay. */
  revoke(): void {
    this.revoked = true;
    if (this.client) refuse(this.client);
    this.close();
  }

  /** Ends the relay: closes the socket to the holder (which keeps the shell for a reconnect, as for any dropped tab). */
  close(): void {
    // A paused socket would not read the holder's reply to a closing handshake: one never attached is just dropped.
    if (!this.client) this.upstream.terminate();
    else if (this.upstream.readyState === WebSocket.OPEN) this.upstream.close(1000);
    this.end();
  }

  /** Frames read from `from` go to `to`; while `to` has too much unsent, `from` is not read. */
  private relay(from: WebSocket, to: WebSocket): void {
    let waiting: NodeJS.Timeout | null = null;
    from.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (to.readyState !== WebSocket.OPEN) return;
      to.send(toBuffer(data), { binary: isBinary });
      if (waiting || to.bufferedAmount <= highWaterBytes) return;
      from.pause();
      waiting = setInterval(() => {
        if (to.readyState === WebSocket.OPEN && to.bufferedAmount > lowWaterBytes) return;
        clearInterval(waiting!);
        this.timers.delete(waiting!);
        waiting = null;
        from.resume();
      }, 50);
      this.timers.add(waiting);
    });
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.early = [];
    for (const listener of this.endListeners.splice(0)) listener();
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/**
 * Closes `socket` the way the other side closed: the same code and reason where the protocol lets them be sent;
 * no code for "no status" (1005); a dropped connection (1006) as a dropped connection, so clients reconnect as
 * they would to the holder itself.
 */
function closeLike(socket: WebSocket, code: number, reason: Buffer): void {
  if (socket.readyState === WebSocket.CLOSING || socket.readyState === WebSocket.CLOSED) return;
  if (code === 1006) socket.terminate();
  else if (sendableCloseCode(code)) socket.close(code, reason);
  else socket.close();
}

function sendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

function refuse(socket: WebSocket): void {
  if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'error', code: 'UNAUTHORIZED', message: revokedMessage }));
  socket.close(4401, 'the credential was revoked');
}
