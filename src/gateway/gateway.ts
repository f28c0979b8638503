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
import { join } from 'node:path';
import { AppError, conflict } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { TokenUsage } from '../core/types.ts';
import {
  downstreamResponseHeaders,
  presentedToken,
  upstreamRequestHeaders,
  type ModelCredential,
} from './proxy-headers.ts';
import { TokenRegistry, type GatewayGrant } from './token-registry.ts';
import { createUsageMeter } from './usage-meter.ts';

export type { GatewayGrant } from './token-registry.ts';
export type { ModelCredential } from './proxy-headers.ts';

/** One metered model response. */
export interface GatewayUsage {
  userId: string;
  conversationId: string;
  turnId: string | null;
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
  /** Replaces the platform credential for requests started from now on. */
  setCredential(credential: ModelCredential | null): void;
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

export function createGateway(options: GatewayOptions): Gateway {
  return new ModelGateway(options);
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
}

class ModelGateway implements Gateway {
  private readonly registry = new TokenRegistry();
  private readonly sockets = new Map<string, OpenSocket>();
  /** Sandbox ids whose socket is being set up, so two opens for one sandbox cannot race. */
  private readonly opening = new Set<string>();
  private readonly logger: Logger;
  private readonly maxBodyBytes: number;
  private readonly upstream: URL;
  private readonly agent: HttpAgent;
  private credential: ModelCredential | null;

  constructor(private readonly options: GatewayOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'gateway' });
    this.maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
    this.upstream = parseUpstream(options.upstreamUrl);
    this.credential = options.credential;
    const agentOptions = { keepAlive: true, maxFreeSockets: 16 };
    this.agent = this.upstream.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
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
    const server = createServer({ requestTimeout: 0, keepAliveTimeout: 65_000 }, (request, response) => {
      this.handle(sandboxId, request, response);
    });
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

    const token = this.registry.issue(grant);
    this.sockets.set(token, { sandboxId, socketPath, server });
    this.logger.info({ sandboxId, userId: grant.userId, conversationId: grant.conversationId }, 'gateway socket opened');
    return { token, socketPath };
  }

  setTurn(token: string, turnId: string | null): void {
    this.registry.setTurn(token, turnId);
  }

  setCredential(credential: ModelCredential | null): void {
    this.credential = credential;
  }

  async close(token: string): Promise<void> {
    const entry = this.registry.revoke(token);
    const open = this.sockets.get(token);
    this.sockets.delete(token);
    if (!open) return;
    const closed = new Promise<void>((resolve) => open.server.close(() => resolve()));
    open.server.closeAllConnections();
    await closed;
    await rm(open.socketPath, { force: true });
    this.logger.info({ sandboxId: open.sandboxId, conversationId: entry?.grant.conversationId }, 'gateway socket closed');
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.sockets.keys()].map((token) => this.close(token)));
    this.agent.destroy();
  }

  private handle(sandboxId: string, request: IncomingMessage, response: ServerResponse): void {
    const started = Date.now();
    const method = request.method ?? 'GET';
    const url = request.url ?? '/';
    const pathname = url.split('?')[0] ?? '/';
    const log = this.logger.child({ sandboxId });
    response.on('finish', () => {
      log.debug({ method, path: pathname, status: response.statusCode, durationMs: Date.now() - started }, 'model request');
    });

    // The CLI preconnects with an unauthenticated HEAD /; nothing is forwarded.
    if (pathname === '/' && (method === 'HEAD' || method === 'GET')) {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end(method === 'GET' ? 'ok' : undefined);
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
    const credential = this.credential;
    if (!credential) {
      sendError(request, response, 503, 'api_error', 'no model credential configured');
      return;
    }
    const declaredLength = Number(request.headers['content-length'] ?? 0);
    if (declaredLength > this.maxBodyBytes) {
      sendError(request, response, 413, 'request_too_large', `request body exceeds ${this.maxBodyBytes} bytes`);
      return;
    }

    const { grant } = entry;
    const turnId = entry.turnId;
    this.forward(request, response, credential, (model, usage) => {
      const record: GatewayUsage = {
        userId: grant.userId,
        conversationId: grant.conversationId,
        turnId,
        model: model ?? 'unknown',
        usage,
      };
      Promise.resolve()
        .then(() => this.options.onUsage(record))
        .catch((error: unknown) => log.error({ err: error, conversationId: grant.conversationId }, 'recording usage failed'));
    }, log);
  }

  private forward(
    request: IncomingMessage,
    response: ServerResponse,
    credential: ModelCredential,
    report: (model: string | null, usage: TokenUsage) => void,
    log: Logger,
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
    // If the sandbox hangs up, stop the upstream call too (the API stops generating, and billing, soon after).
    response.on('close', () => {
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
          response.once('drain', () => upstreamResponse.resume());
        }
      });
      upstreamResponse.on('end', () => {
        reportOnce();
        response.end();
      });
      // Cut short (either side hung up): what was generated so far was still consumed.
      upstreamResponse.on('close', () => {
        reportOnce();
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
): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const body = JSON.stringify({ type: 'error', error: { type, message } });
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}
