import { chmod, mkdir, rm } from 'node:fs/promises';
import {
  Agent as HttpAgent,
  createServer,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { AppError, conflict } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { TokenUsage } from '../core/types.ts';
import { ConnectionBudget, readOpenFileLimit, sandboxConnectionBudget, type ConnectionRefusal } from './descriptor-budget.ts';
import { EgressProxy, type EgressContext, type EgressEvent } from './egress-proxy.ts';
import { createEgressResolver, type EgressResolver } from './egress-resolver.ts';
import {
  downstreamResponseHeaders,
  presentedToken,
  upstreamRequestHeaders,
  type ModelCredential,
} from './proxy-headers.ts';
import { checkRequestTarget, describePathProblem } from './request-path.ts';
import { TokenRegistry, type GatewayGrant, type GrantStore, type TokenEntry } from './token-registry.ts';
import { createUsageMeter, PendingUsage, type PendingRequest } from './usage-meter.ts';

export type { GatewayGrant, GrantStore } from './token-registry.ts';
export type { ModelCredential } from './proxy-headers.ts';
export type { EgressEvent } from './egress-proxy.ts';

/** One metered model response. */
export interface GatewayUsage {
  userId: string;
  conversationId: string;
  turnId: string | null;
  agentId: string | null;
  /** The model named in the response; `unknown` when it named none. */
  model: string;
  usage: TokenUsage;
}

export interface GatewayOptions {
  /** The Anthropic API base, e.g. https://api.anthropic.com (a path prefix is kept). */
  upstreamUrl: string;
  /** null: model requests are answered 503 until `setCredential` supplies one. */
  credential: ModelCredential | null;
  /** Holds one socket per open sandbox; created 0755 so the sandbox's unprivileged uid can reach it. */
  socketDir: string;
  /** Called once per response that reported usage; a rejection is logged, never surfaced to the sandbox. */
  onUsage: (record: GatewayUsage) => void | Promise<void>;
  logger?: Logger;
  /** Largest request body forwarded (default 32 MiB, the API's own limit). */
  maxBodyBytes?: number;
  /**
   * The user's own credential, used in preference to the platform's; null: the platform's. Asked before every
   * model request, so a rotated key applies to the next one.
   */
  credentialFor?: (userId: string) => ModelCredential | null | Promise<ModelCredential | null>;
  /** Asked before every model request; a refusal is answered to the CLI as an API error and reported to `onRefused`. */
  admit?: (grant: GatewayGrant) => GatewayRefusal | null | Promise<GatewayRefusal | null>;
  /** Told when `admit` refused a model request, with the turn it belonged to. */
  onRefused?: (refused: { grant: GatewayGrant; turnId: string | null; refusal: GatewayRefusal }) => void;
  /** Model requests in flight at once per sandbox; more are answered 429 (default 8). */
  maxStreamsPerSandbox?: number;
  /** A sandbox that does not read its answer for this long is cut off (default 60 s). */
  stallTimeoutMs?: number;
  /**
   * Connections one sandbox may hold open on its socket at once, of every kind: model requests, idle keep-alives,
   * egress tunnels (default 128). More are answered 429 and closed.
   */
  maxConnectionsPerSandbox?: number;
  /**
   * Connections all sandboxes together may hold (default: from this process's descriptor limit, see
   * descriptor-budget.ts). More are answered 503 and closed.
   */
  maxConnections?: number;
  /** A connection that has not sent a whole request head this long after it opened is closed (default 5 s). */
  firstRequestTimeoutMs?: number;
  /**
   * Keeps every grant in the store too (by token hash, with this replica's id), so that any replica can resolve a
   * token this one issued. Default: grants live in this process only. `close` waits at most `storeWaitMs` (default
   * 5 s) for the store to revoke a grant.
   */
  grants?: { store: GrantStore; replicaId: string; storeWaitMs?: number };
  egress?: {
    /** Default: the system resolver. */
    resolve?: EgressResolver;
    /** Connections open at once per sandbox (default 32). */
    maxConnectionsPerSandbox?: number;
    connectTimeoutMs?: number;
    helloTimeoutMs?: number;
    idleTimeoutMs?: number;
    /** Every connection attempt, allowed or not. */
    onEgress?: (event: EgressEvent) => void;
  };
}

/** Why the gateway refused a model request on the platform's behalf (a quota). */
export interface GatewayRefusal {
  code: 'QUOTA_EXCEEDED';
  message: string;
  details?: Record<string, unknown>;
}

/** A live token's grant as `resolve` finds it. */
export interface ResolvedGrant {
  /** With the egress domains in force now. */
  grant: GatewayGrant;
  /** The replica that issued the token and serves the sandbox's socket. */
  replicaId: string;
  turnId: string | null;
}

export interface GatewayLease {
  /** The secret the sandbox presents, as `ANTHROPIC_API_KEY` (see `gatewayClientEnv`). */
  token: string;
  /** Host path of this sandbox's unix socket; bind it into the sandbox and bridge it to `gatewayUrl`. */
  socketPath: string;
}

/** The model gateway: sandboxes reach the Anthropic API only through it, with their own token, metered. */
export interface Gateway {
  /** Issues a token for the sandbox and starts serving its socket `<socketDir>/<sandboxId>.sock`. */
  open(grant: GatewayGrant): Promise<GatewayLease>;
  /** Attributes usage of requests started from now on to `turnId` (null: no turn). Unknown tokens are ignored. */
  setTurn(token: string, turnId: string | null): void;
  /**
   * Resolves once every model request started during the turn has ended and its usage is recorded (true), or after
   * `timeoutMs` (false): a turn's metered usage is final only then.
   */
  usageSettled(turnId: string, timeoutMs: number): Promise<boolean>;
  /** Replaces the sandbox's egress domains for connections opened from now on. Unknown tokens are ignored. */
  setEgressDomains(token: string, domains: readonly string[]): void;
  /** Replaces the platform credential for requests started from now on. */
  setCredential(credential: ModelCredential | null): void;
  /**
   * The grant of a live token, whichever replica issued it (from memory when this one did, else from the store);
   * null for an unknown or revoked one. What a gateway reachable over the network asks for a token it did not issue.
   */
  resolve(token: string): Promise<ResolvedGrant | null>;
  /** Revokes the token at once, drops its connections, closes the socket and removes the file. Idempotent. */
  close(token: string): Promise<void>;
  closeAll(): Promise<void>;
}

/**
 * The environment variables that point the Claude Code CLI in a sandbox at the gateway. The token travels as
 * `ANTHROPIC_API_KEY` (sent as `x-api-key`); the gateway also accepts it as `ANTHROPIC_AUTH_TOKEN` (Bearer).
 */
export function gatewayClientEnv(gatewayUrl: string, token: string): Record<string, string> {
  return { ANTHROPIC_BASE_URL: gatewayUrl, ANTHROPIC_API_KEY: token };
}

export { egressProxyEnv } from '../core/gateway.ts';

export function createGateway(options: GatewayOptions): Gateway {
  const maxConnections = options.maxConnections ?? sandboxConnectionBudget(readOpenFileLimit()?.soft ?? 1024);
  return new ModelGateway({ ...options, maxConnections });
}

/** The paths a sandbox may reach; everything else (batches, files, admin) would bypass metering or scope. */
const allowedRoutes: Array<{ method: string; pattern: RegExp }> = [
  { method: 'POST', pattern: /^\/v1\/messages$/ },
  { method: 'POST', pattern: /^\/v1\/messages\/count_tokens$/ },
  { method: 'GET', pattern: /^\/v1\/models(\/[A-Za-z0-9._:@-]+)?$/ },
];

const sandboxIdPattern = /^[A-Za-z0-9_-]{1,64}$/;
// sun_path holds 108 bytes including the terminating NUL.
const maxSocketPathBytes = 107;

interface OpenSocket {
  sandboxId: string;
  socketPath: string;
  server: Server;
  /** Set once the token is issued; requests before that find no entry. */
  token: string | null;
  /** Every connection to the socket, tunnels included (the HTTP server forgets those), to drop them on close. */
  connections: Set<Duplex>;
  /** Connections that have not yet sent their first request, with the timer that closes them. */
  awaitingRequest: Map<Duplex, NodeJS.Timeout>;
  /** Connections refused over a limit, for the log. */
  refused: number;
  log: Logger;
}

/** How a connection over a limit is answered: HTTP status, error type and message (in the API's error shape). */
const connectionRefusals: Record<ConnectionRefusal, { status: string; type: string; message: (limit: number) => string }> = {
  'sandbox-limit': { status: '429 Too Many Requests', type: 'rate_limit_error', message: (limit) => `at most ${limit} connections at once per sandbox` },
  'server-limit': { status: '503 Service Unavailable', type: 'overloaded_error', message: () => 'the gateway holds as many sandbox connections as it can' },
};

class ModelGateway implements Gateway {
  private readonly registry: TokenRegistry;
  /** Model requests whose usage is not recorded yet, by turn. */
  private readonly pendingUsage = new PendingUsage();
  private readonly sockets = new Map<string, OpenSocket>();
  /** Sandbox ids whose socket is being set up, so two opens for one sandbox cannot race. */
  private readonly opening = new Set<string>();
  private readonly logger: Logger;
  private readonly maxBodyBytes: number;
  private readonly upstream: URL;
  private readonly agent: HttpAgent;
  private readonly egress: EgressProxy;
  private readonly maxStreams: number;
  private readonly stallTimeoutMs: number;
  private readonly firstRequestTimeoutMs: number;
  private readonly connectionBudget: ConnectionBudget;
  private credential: ModelCredential | null;

  constructor(private readonly options: GatewayOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'gateway' });
    this.registry = new TokenRegistry({ ...options.grants, logger: this.logger });
    this.maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
    this.maxStreams = options.maxStreamsPerSandbox ?? 8;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
    this.firstRequestTimeoutMs = options.firstRequestTimeoutMs ?? 5_000;
    this.connectionBudget = new ConnectionBudget({
      perSandbox: options.maxConnectionsPerSandbox ?? 128,
      total: options.maxConnections ?? sandboxConnectionBudget(1024),
    });
    this.upstream = parseUpstream(options.upstreamUrl);
    this.credential = options.credential;
    const agentOptions = { keepAlive: true, maxFreeSockets: 16 };
    this.agent = this.upstream.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    const egress = options.egress ?? {};
    this.egress = new EgressProxy({
      resolve: egress.resolve ?? createEgressResolver(),
      maxConnectionsPerSandbox: egress.maxConnectionsPerSandbox ?? 32,
      onEgress: egress.onEgress ?? (() => undefined),
      logger: this.logger,
      ...(egress.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: egress.connectTimeoutMs }),
      ...(egress.helloTimeoutMs === undefined ? {} : { helloTimeoutMs: egress.helloTimeoutMs }),
      ...(egress.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: egress.idleTimeoutMs }),
    });
  }

  async open(grant: GatewayGrant): Promise<GatewayLease> {
    if (!sandboxIdPattern.test(grant.sandboxId)) {
      throw new AppError('BAD_REQUEST', 'sandbox id must be 1-64 letters, digits, _ or -', { sandboxId: grant.sandboxId });
    }
    const socketPath = join(this.options.socketDir, `${grant.sandboxId}.sock`);
    if (Buffer.byteLength(socketPath) > maxSocketPathBytes) {
      throw new AppError('INTERNAL', `gateway socket path is longer than ${maxSocketPathBytes} bytes; choose a shorter socketDir`, {
        socketPath,
      });
    }
    const taken = this.opening.has(grant.sandboxId) || [...this.sockets.values()].some((open) => open.sandboxId === grant.sandboxId);
    if (taken) throw conflict(`sandbox ${grant.sandboxId} already has a gateway socket`);
    this.opening.add(grant.sandboxId);
    try {
      return await this.listen(grant, socketPath);
    } finally {
      this.opening.delete(grant.sandboxId);
    }
  }

  private async listen(grant: GatewayGrant, socketPath: string): Promise<GatewayLease> {
    const sandboxId = grant.sandboxId;
    const open: OpenSocket = {
      sandboxId,
      socketPath,
      server: null as unknown as Server,
      token: null,
      connections: new Set(),
      awaitingRequest: new Map(),
      refused: 0,
      log: this.logger.child({ sandboxId }),
    };
    // Headers must arrive promptly and a whole request body within 5 minutes; answers may stream for as long as they take.
    const server = createServer({ requestTimeout: 300_000, headersTimeout: 30_000, keepAliveTimeout: 65_000 }, (request, response) => {
      this.handle(open, request, response);
    });
    open.server = server;
    // Ahead of the HTTP server's own listener, so that a refused connection is closed before it is parsed.
    server.prependListener('connection', (socket: Socket) => this.accept(open, socket));
    server.prependListener('request', (request: IncomingMessage) => this.requestArrived(open, request.socket));
    server.prependListener('connect', (request: IncomingMessage) => this.requestArrived(open, request.socket));
    server.on('connect', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.tunnel(open, request, socket, head));
    try {
      await mkdir(this.options.socketDir, { recursive: true });
      await chmod(this.options.socketDir, 0o755);
      // A socket file left by a crashed process would make listen fail with EADDRINUSE.
      await rm(socketPath, { force: true });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
      await chmod(socketPath, 0o666);
    } catch (cause) {
      server.close();
      await rm(socketPath, { force: true });
      throw new AppError('INTERNAL', 'could not open the gateway socket', { sandboxId, socketPath }, { cause });
    }
    server.on('error', (error) => this.logger.error({ sandboxId, err: error }, 'gateway socket failed'));

    let token: string;
    try {
      token = await this.registry.issue(grant);
    } catch (error) {
      // The grant could not be stored: no token, and no socket.
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(socketPath, { force: true });
      throw error;
    }
    open.token = token;
    this.sockets.set(token, open);
    this.logger.info({ sandboxId, userId: grant.userId, conversationId: grant.conversationId }, 'gateway socket opened');
    return { token, socketPath };
  }

  setTurn(token: string, turnId: string | null): void {
    this.registry.setTurn(token, turnId);
  }

  usageSettled(turnId: string, timeoutMs: number): Promise<boolean> {
    return this.pendingUsage.settled(turnId, timeoutMs);
  }

  setEgressDomains(token: string, domains: readonly string[]): void {
    this.registry.setEgressDomains(token, domains);
  }

  setCredential(credential: ModelCredential | null): void {
    this.credential = credential;
  }

  async resolve(token: string): Promise<ResolvedGrant | null> {
    const entry = await this.registry.resolve(token);
    if (!entry) return null;
    return { grant: { ...entry.grant, egressDomains: [...entry.egressDomains] }, replicaId: entry.replicaId, turnId: entry.turnId };
  }

  async close(token: string): Promise<void> {
    // The token stops working here at once; its stored grant is revoked while the socket closes.
    const revoked = this.registry.revoke(token);
    const open = this.sockets.get(token);
    this.sockets.delete(token);
    if (!open) {
      await revoked;
      return;
    }
    this.egress.closeSandbox(open.sandboxId);
    const closed = new Promise<void>((resolve) => open.server.close(() => resolve()));
    open.server.closeAllConnections();
    for (const socket of open.connections) socket.destroy();
    await closed;
    await rm(open.socketPath, { force: true });
    const entry = await revoked;
    this.logger.info({ sandboxId: open.sandboxId, conversationId: entry?.grant.conversationId, refusedConnections: open.refused }, 'gateway socket closed');
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.sockets.keys()].map((token) => this.close(token)));
    this.egress.closeAll();
    this.agent.destroy();
  }

  /**
   * Counts a new connection against its sandbox's cap and the server's budget, or answers it with an error and
   * closes it at once: a flood of connections must not hold the server's descriptors.
   */
  private accept(open: OpenSocket, socket: Socket): void {
    socket.on('error', () => undefined);
    const place = this.connectionBudget.take(open.sandboxId);
    if ('refused' in place) {
      open.refused += 1;
      if (open.refused === 1) {
        open.log.warn({ reason: place.refused, held: this.connectionBudget.held(open.sandboxId), total: this.connectionBudget.held() }, 'refusing gateway connections over the limit');
      }
      const refusal = connectionRefusals[place.refused];
      const body = JSON.stringify({ type: 'error', error: { type: refusal.type, message: refusal.message(this.connectionBudget.limits.perSandbox) } });
      socket.write(
        `HTTP/1.1 ${refusal.status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `retry-after: 1\r\nconnection: close\r\n\r\n${body}`,
      );
      socket.destroy();
      return;
    }
    open.connections.add(socket);
    // A connection that sends nothing only holds a descriptor.
    open.awaitingRequest.set(socket, setTimeout(() => socket.destroy(), this.firstRequestTimeoutMs));
    socket.once('close', () => {
      place.release();
      open.connections.delete(socket);
      this.requestArrived(open, socket);
    });
  }

  private requestArrived(open: OpenSocket, socket: Duplex): void {
    const timer = open.awaitingRequest.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    open.awaitingRequest.delete(socket);
  }

  /** The live entry of the sandbox this socket belongs to. */
  private socketEntry(open: OpenSocket): TokenEntry | undefined {
    return open.token === null ? undefined : this.registry.lookup(open.token);
  }

  /** `CONNECT host:port` from the sandbox: an egress tunnel. The socket identifies the sandbox; no token is needed. */
  private tunnel(open: OpenSocket, request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const entry = this.socketEntry(open);
    if (!entry) {
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    this.egress.tunnel(egressContext(entry), request, socket, head);
  }

  private handle(open: OpenSocket, request: IncomingMessage, response: ServerResponse): void {
    const started = Date.now();
    const sandboxId = open.sandboxId;
    const method = request.method ?? 'GET';
    const url = request.url ?? '/';
    const target = url.startsWith('/') ? checkRequestTarget(url) : null;
    const pathname = target !== null && 'path' in target ? target.path : (url.split('?')[0] ?? '/');
    const log = open.log;
    response.on('finish', () => {
      log.debug({ method, path: pathname, status: response.statusCode, durationMs: Date.now() - started }, 'model request');
    });

    // Only one spelling of a path is matched against the allowlist and sent on: no dot segments, no encodings.
    if (target !== null && 'problem' in target) {
      sendError(request, response, 400, 'invalid_request_error', `agentyard: ${describePathProblem(target.problem)}`);
      return;
    }

    // The CLI preconnects with an unauthenticated HEAD /; nothing is forwarded.
    if (pathname === '/' && (method === 'HEAD' || method === 'GET')) {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end(method === 'GET' ? 'ok' : undefined);
      return;
    }

    // An absolute URL is a plain-HTTP proxy request from a tool in the sandbox (HTTP_PROXY).
    if (!url.startsWith('/')) {
      const entry = this.socketEntry(open);
      if (!entry || !/^http:\/\//i.test(url)) {
        sendError(request, response, entry ? 400 : 503, 'invalid_request_error', 'only http:// URLs can be proxied; use CONNECT for https');
        return;
      }
      this.egress.forward(egressContext(entry), request, response);
      return;
    }

    const token = presentedToken(request.headers);
    const entry = token === null ? undefined : this.registry.lookup(token);
    // A token is only good on its own sandbox's socket.
    if (!entry || entry.grant.sandboxId !== sandboxId) {
      sendError(request, response, 401, 'authentication_error', 'invalid sandbox token');
      return;
    }
    if (!allowedRoutes.some((route) => route.method === method && route.pattern.test(pathname))) {
      sendError(request, response, 404, 'not_found_error', `${method} ${pathname} is not available through the gateway`);
      return;
    }
    const declaredLength = Number(request.headers['content-length'] ?? 0);
    if (declaredLength > this.maxBodyBytes) {
      sendError(request, response, 413, 'request_too_large', `request body exceeds ${this.maxBodyBytes} bytes`);
      return;
    }
    if (entry.inFlight >= this.maxStreams) {
      log.warn({ inFlight: entry.inFlight }, 'too many concurrent model requests from one sandbox');
      sendError(request, response, 429, 'rate_limit_error', `at most ${this.maxStreams} model requests at once per sandbox`, { 'retry-after': '1' });
      return;
    }
    entry.inFlight += 1;
    response.once('close', () => {
      entry.inFlight -= 1;
    });

    const { grant } = entry;
    // The turn when the request started is the one it is billed to, whenever it ends.
    const turnId = entry.turnId;
    const metered = method === 'POST' && pathname === '/v1/messages';
    // The turn's usage is not final while this request's answer runs or its usage is being recorded.
    const pending = this.pendingUsage.track(metered ? turnId : null);
    response.once('close', pending.done);
    const proceed = (credential: ModelCredential | null, refusal: GatewayRefusal | null): void => {
      if (refusal) {
        log.info({ conversationId: grant.conversationId, turnId, code: refusal.code }, 'model request refused');
        this.options.onRefused?.({ grant, turnId, refusal });
        // 400 is not retried by the CLI: the turn ends at once with this message.
        sendError(request, response, 400, 'invalid_request_error', `agentyard: ${refusal.message}`);
        return;
      }
      if (!credential) {
        sendError(request, response, 503, 'api_error', 'no model credential configured');
        return;
      }
      this.forward(request, response, credential, (model, usage) => {
        const record: GatewayUsage = {
          userId: grant.userId,
          conversationId: grant.conversationId,
          turnId,
          agentId: grant.agentId ?? null,
          model: model ?? 'unknown',
          usage,
        };
        Promise.resolve()
          .then(() => this.options.onUsage(record))
          .catch((error: unknown) => log.error({ err: error, conversationId: grant.conversationId }, 'recording usage failed'))
          .finally(pending.hold());
      }, log, pending);
    };

    const { credentialFor, admit } = this.options;
    if (!credentialFor && !(admit && metered)) {
      proceed(this.credential, null);
      return;
    }
    // The body stays paused (no reader yet) while the credential and the quota are looked up.
    Promise.all([credentialFor ? credentialFor(grant.userId) : null, admit && metered ? admit(grant) : null]).then(
      ([own, refusal]) => proceed(own ?? this.credential, refusal),
      (error: unknown) => {
        log.error({ err: error, conversationId: grant.conversationId }, 'credential or quota lookup failed');
        sendError(request, response, 500, 'api_error', 'the gateway could not prepare the request');
      },
    );
  }

  private forward(
    request: IncomingMessage,
    response: ServerResponse,
    credential: ModelCredential,
    report: (model: string | null, usage: TokenUsage) => void,
    log: Logger,
    pending: PendingRequest,
  ): void {
    const basePath = this.upstream.pathname.replace(/\/+$/, '');
    const send = this.upstream.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstreamRequest: ClientRequest = send({
      protocol: this.upstream.protocol,
      hostname: this.upstream.hostname,
      port: this.upstream.port,
      method: request.method,
      path: `${basePath}${request.url ?? '/'}`,
      headers: upstreamRequestHeaders(request.headers, credential),
      agent: this.agent,
    });

    // Set once nothing more is to be forwarded: the gateway answered with its own error (502, 413), or the
    // sandbox hung up.
    let abandoned = false;
    let stall: NodeJS.Timeout | null = null;
    // If the sandbox hangs up, stop the upstream call too (the API stops generating, and billing, soon after).
    response.on('close', () => {
      if (stall) clearTimeout(stall);
      if (response.writableFinished) return;
      abandoned = true;
      upstreamRequest.destroy();
    });

    upstreamRequest.on('error', (error) => {
      if (abandoned) return;
      abandoned = true;
      log.warn({ err: { message: error.message, code: (error as NodeJS.ErrnoException).code } }, 'model upstream failed');
      if (!response.headersSent) {
        sendError(request, response, 502, 'api_error', 'the model upstream could not be reached');
      } else {
        response.destroy();
      }
    });

    upstreamRequest.on('response', (upstreamResponse) => {
      // Held until the answer has closed: a stream cut off by the sandbox is reported only then.
      const answered = pending.hold();
      const meter = createUsageMeter(upstreamResponse.headers['content-type']);
      let reported = false;
      const reportOnce = (): void => {
        if (reported) return;
        reported = true;
        const metered = meter.finish();
        if (metered) report(metered.model, metered.usage);
      };
      response.writeHead(upstreamResponse.statusCode ?? 502, downstreamResponseHeaders(upstreamResponse.headers));
      response.flushHeaders();
      upstreamResponse.on('data', (chunk: Buffer) => {
        meter.push(chunk);
        if (!response.write(chunk)) {
          upstreamResponse.pause();
          if (stall !== null) return;
          // A client that stops reading would otherwise hold the upstream stream (and its buffers) forever.
          stall = setTimeout(() => {
            log.warn({ stallTimeoutMs: this.stallTimeoutMs }, 'the sandbox stopped reading its answer; dropping the stream');
            upstreamRequest.destroy();
            response.destroy();
          }, this.stallTimeoutMs);
          response.once('drain', () => {
            if (stall) clearTimeout(stall);
            stall = null;
            upstreamResponse.resume();
          });
        }
      });
      upstreamResponse.on('end', () => {
        reportOnce();
        response.end();
      });
      // Cut short (either side hung up): what was generated so far was still consumed.
      upstreamResponse.on('close', () => {
        reportOnce();
        answered();
        if (!upstreamResponse.complete) {
          response.destroy();
        }
      });
      upstreamResponse.on('error', () => undefined);
    });

    let received = 0;
    request.on('data', (chunk: Buffer) => {
      if (abandoned) return;
      received += chunk.length;
      if (received > this.maxBodyBytes) {
        // A body sent without (or with a false) content-length; the rest of it is discarded by Node.
        abandoned = true;
        upstreamRequest.destroy();
        sendError(request, response, 413, 'request_too_large', `request body exceeds ${this.maxBodyBytes} bytes`);
        return;
      }
      if (!upstreamRequest.write(chunk)) {
        request.pause();
        upstreamRequest.once('drain', () => request.resume());
      }
    });
    request.on('end', () => {
      if (!abandoned) upstreamRequest.end();
    });
    request.on('error', () => upstreamRequest.destroy());
  }
}

function egressContext(entry: TokenEntry): EgressContext {
  const { grant } = entry;
  return { sandboxId: grant.sandboxId, userId: grant.userId, conversationId: grant.conversationId, rules: entry.egress };
}

function parseUpstream(upstreamUrl: string): URL {
  try {
    const url = new URL(upstreamUrl);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  } catch {
    // reported below
  }
  throw new AppError('INTERNAL', 'gateway upstreamUrl must be an http(s) URL');
}

/** An error in the API's own shape, so the CLI reports it like any API error. */
function sendError(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  type: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const body = JSON.stringify({ type: 'error', error: { type, message } });
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}
