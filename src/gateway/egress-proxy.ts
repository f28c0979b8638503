import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { connect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../core/logger.ts';
import { isAllowedDestination, isForbiddenAddress, isIpLiteral, normalizeHost, type EgressRule } from './egress-policy.ts';
import type { EgressResolver } from './egress-resolver.ts';
import { downstreamResponseHeaders } from './proxy-headers.ts';
import { maxClientHelloBytes, readClientHello } from './tls-client-hello.ts';

/** Who is asking: the sandbox whose socket the request came in on, and its current egress rules. */
export interface EgressContext {
  sandboxId: string;
  userId: string;
  conversationId: string;
  rules: readonly EgressRule[];
}

/** One connection attempt and what became of it; every attempt produces exactly one. */
export interface EgressEvent {
  sandboxId: string;
  userId: string;
  conversationId: string;
  host: string;
  port: number;
  address: string | null;
  decision: 'allowed' | 'denied' | 'failed';
  /** null when allowed. */
  reason: EgressReason | null;
}

export type EgressReason =
  | 'bad-request'
  | 'ip-literal'
  | 'not-allowed'
  | 'connection-limit'
  | 'unresolved'
  | 'private-address'
  | 'unreachable'
  | 'not-tls'
  | 'sni-missing'
  | 'sni-mismatch';

export interface EgressProxyOptions {
  resolve: EgressResolver;
  /** Egress connections (tunnels and plain-HTTP requests) open at once per sandbox. */
  maxConnectionsPerSandbox: number;
  onEgress: (event: EgressEvent) => void;
  logger?: Logger;
  /** Connecting to the remote (default 10 s). */
  connectTimeoutMs?: number;
  /** Waiting for the client's TLS ClientHello after the tunnel opened (default 10 s). */
  helloTimeoutMs?: number;
  /** A tunnel with no traffic either way for this long is closed (default 5 min). */
  idleTimeoutMs?: number;
}

const messages: Record<EgressReason, string> = {
  'bad-request': 'the proxy request names no valid host and port',
  'ip-literal': 'IP addresses are not allowed; name the host',
  'not-allowed': "the host is not in this agent's egressDomains",
  'connection-limit': 'too many egress connections from this sandbox',
  unresolved: 'the host name does not resolve',
  'private-address': 'the host resolves to a loopback, private, link-local or metadata address',
  unreachable: 'the host could not be reached',
  'not-tls': 'a tunnel must carry TLS',
  'sni-missing': 'the TLS ClientHello names no server',
  'sni-mismatch': 'the TLS server name differs from the CONNECT target',
};

const statusOf: Record<EgressReason, [number, string]> = {
  'bad-request': [400, 'Bad Request'],
  'ip-literal': [403, 'Forbidden'],
  'not-allowed': [403, 'Forbidden'],
  'connection-limit': [429, 'Too Many Requests'],
  unresolved: [502, 'Bad Gateway'],
  'private-address': [403, 'Forbidden'],
  unreachable: [502, 'Bad Gateway'],
  'not-tls': [403, 'Forbidden'],
  'sni-missing': [403, 'Forbidden'],
  'sni-mismatch': [403, 'Forbidden'],
};

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

type Check = { ok: true; host: string; port: number; address: string } | { ok: false; host: string; port: number; address: string | null; reason: EgressReason };

/**
 * The egress proxy offered to sandboxes on their gateway socket: HTTP CONNECT tunnels for TLS, and plain-HTTP
 * requests in absolute form. Default deny: only the agent's domains, never IP literals or names resolving to
 * internal addresses, and a tunnel's TLS server name must be the host it was opened for.
 */
export class EgressProxy {
  private readonly open = new Map<string, Set<Duplex>>();
  private readonly logger: Logger;
  private readonly connectTimeoutMs: number;
  private readonly helloTimeoutMs: number;
  private readonly idleTimeoutMs: number;

  constructor(private readonly options: EgressProxyOptions) {
    this.logger = options.logger ?? silentLogger;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.helloTimeoutMs = options.helloTimeoutMs ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
  }

  /** Connections open for the sandbox right now. */
  connections(sandboxId: string): number {
    return this.open.get(sandboxId)?.size ?? 0;
  }

  /** Handles `CONNECT host:port` on a sandbox's socket. */
  tunnel(context: EgressContext, request: IncomingMessage, client: Duplex, head: Buffer): void {
    client.on('error', () => undefined);
    const target = parseAuthority(request.url ?? '');
    const { release, over } = this.reserve(context.sandboxId, client);
    void this.check(context, target?.host ?? '', target?.port ?? 0, { malformed: target === null, over }).then(
      (checked) => {
        if (!checked.ok) {
          release();
          this.refuseSocket(context, client, checked);
          return;
        }
        this.openTunnel(context, client, head, checked, release);
      },
      (error: unknown) => {
        release();
        this.logger.error({ err: error, sandboxId: context.sandboxId }, 'egress check failed');
        client.destroy();
      },
    );
  }

  /** Handles a plain-HTTP proxy request (`GET http://host/path`). */
  forward(context: EgressContext, request: IncomingMessage, response: ServerResponse): void {
    let url: URL | null = null;
    try {
      url = new URL(request.url ?? '');
    } catch {
      url = null;
    }
    const valid = url !== null && url.protocol === 'http:' && url.hostname !== '' && url.username === '' && url.password === '';
    const port = url?.port ? Number(url.port) : 80;
    const { release, over } = this.reserve(context.sandboxId, response);
    void this.check(context, url?.hostname ?? '', port, { malformed: !valid, over }).then(
      (checked) => {
        if (!checked.ok) {
          release();
          this.refuseResponse(context, response, checked);
          return;
        }
        this.sendUpstream(context, request, response, url!, checked, release);
      },
      (error: unknown) => {
        release();
        this.logger.error({ err: error, sandboxId: context.sandboxId }, 'egress check failed');
        response.destroy();
      },
    );
  }

  /** Drops every connection of the sandbox. */
  closeSandbox(sandboxId: string): void {
    const sockets = this.open.get(sandboxId);
    this.open.delete(sandboxId);
    for (const socket of sockets ?? []) socket.destroy();
  }

  closeAll(): void {
    for (const sandboxId of [...this.open.keys()]) this.closeSandbox(sandboxId);
  }

  /** Counts the connection against the sandbox's cap until `release` (or its close); `over`: it went past the cap. */
  private reserve(sandboxId: string, socket: Duplex | ServerResponse): { release: () => void; over: boolean } {
    let sockets = this.open.get(sandboxId);
    if (!sockets) {
      sockets = new Set();
      this.open.set(sandboxId, sockets);
    }
    const over = sockets.size >= this.options.maxConnectionsPerSandbox;
    const handle = socket as Duplex;
    sockets.add(handle);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      sockets.delete(handle);
      if (sockets.size === 0 && this.open.get(sandboxId) === sockets) this.open.delete(sandboxId);
    };
    socket.once('close', release);
    return { release, over };
  }

  private async check(context: EgressContext, rawHost: string, port: number, attempt: { malformed: boolean; over: boolean }): Promise<Check> {
    const host = normalizeHost(rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost);
    const deny = (reason: EgressReason, address: string | null = null): Check => ({ ok: false, host, port, address, reason });
    if (attempt.malformed || host === '' || !Number.isInteger(port) || port < 1 || port > 65_535) return deny('bad-request');
    if (isIpLiteral(host)) return deny('ip-literal');
    if (!isAllowedDestination(context.rules, host, port)) return deny('not-allowed');
    if (attempt.over) return deny('connection-limit');
    const addresses = (await this.options.resolve(host).catch(() => [])).filter((address) => isIP(address) !== 0);
    if (addresses.length === 0) return deny('unresolved');
    // Any internal answer refuses the name: a mixed answer is how rebinding tricks start.
    const forbidden = addresses.find((address) => isForbiddenAddress(address));
    if (forbidden !== undefined) return deny('private-address', forbidden);
    return { ok: true, host, port, address: addresses[0]! };
  }

  private openTunnel(context: EgressContext, client: Duplex, head: Buffer, target: Extract<Check, { ok: true }>, release: () => void): void {
    const remote = connect({ host: target.address, port: target.port, timeout: this.connectTimeoutMs });
    remote.setNoDelay(true);
    let connected = false;
    const fail = (): void => {
      if (connected) return;
      release();
      remote.destroy();
      this.refuseSocket(context, client, { ok: false, host: target.host, port: target.port, address: target.address, reason: 'unreachable' });
    };
    remote.once('timeout', fail);
    remote.once('error', fail);
    client.once('close', () => remote.destroy());
    remote.once('connect', () => {
      connected = true;
      remote.setTimeout(0);
      remote.removeListener('error', fail);
      remote.on('error', () => client.destroy());
      remote.once('close', () => client.destroy());
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      this.awaitHello(context, client, remote, head, target);
    });
  }

  /** Holds the client's first bytes until its ClientHello is complete, checks the server name, then splices. */
  private awaitHello(context: EgressContext, client: Duplex, remote: Socket, head: Buffer, target: Extract<Check, { ok: true }>): void {
    let buffered = head;
    let settled = false;
    const timer = setTimeout(() => refuse('not-tls'), this.helloTimeoutMs);
    const refuse = (reason: EgressReason): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.removeListener('data', onData);
      this.emit(context, { host: target.host, port: target.port, address: target.address, decision: 'denied', reason });
      remote.destroy();
      client.destroy();
    };
    const examine = (): void => {
      const hello = readClientHello(buffered);
      if (hello.kind === 'incomplete') {
        if (buffered.length > maxClientHelloBytes) refuse('not-tls');
        return;
      }
      if (hello.kind === 'not-tls') return refuse('not-tls');
      if (hello.serverName === null) return refuse('sni-missing');
      if (normalizeHost(hello.serverName) !== target.host) return refuse('sni-mismatch');
      settled = true;
      clearTimeout(timer);
      client.removeListener('data', onData);
      this.emit(context, { host: target.host, port: target.port, address: target.address, decision: 'allowed', reason: null });
      remote.write(buffered);
      client.pipe(remote);
      remote.pipe(client);
      const idle = (): void => {
        client.destroy();
        remote.destroy();
      };
      remote.setTimeout(this.idleTimeoutMs, idle);
      if ('setTimeout' in client && typeof (client as Socket).setTimeout === 'function') (client as Socket).setTimeout(this.idleTimeoutMs, idle);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      examine();
    };
    client.on('data', onData);
    // Sockets of the gateway's server stay half-open; a client that hangs up before its hello is done with.
    client.once('end', () => {
      if (!settled) refuse('not-tls');
    });
    client.once('close', () => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        this.emit(context, { host: target.host, port: target.port, address: target.address, decision: 'denied', reason: 'not-tls' });
      }
    });
    if (buffered.length > 0) examine();
  }

  private sendUpstream(
    context: EgressContext,
    request: IncomingMessage,
    response: ServerResponse,
    url: URL,
    target: Extract<Check, { ok: true }>,
    release: () => void,
  ): void {
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (value !== undefined && !hopByHop.has(name)) headers[name] = value;
    }
    headers.host = url.host;
    const upstream = httpRequest({
      host: target.address,
      port: target.port,
      method: request.method,
      path: `${url.pathname}${url.search}`,
      headers,
      setHost: false,
      timeout: this.connectTimeoutMs,
    });
    let answered = false;
    upstream.once('timeout', () => upstream.destroy(new Error('timed out')));
    upstream.once('error', () => {
      release();
      if (answered) {
        response.destroy();
        return;
      }
      this.refuseResponse(context, response, { ok: false, host: target.host, port: target.port, address: target.address, reason: 'unreachable' });
    });
    upstream.once('response', (remote) => {
      answered = true;
      upstream.setTimeout(this.idleTimeoutMs, () => upstream.destroy());
      this.emit(context, { host: target.host, port: target.port, address: target.address, decision: 'allowed', reason: null });
      response.writeHead(remote.statusCode ?? 502, downstreamResponseHeaders(remote.headers));
      remote.pipe(response);
      response.once('close', () => {
        release();
        upstream.destroy();
      });
    });
    request.pipe(upstream);
  }

  private refuseSocket(context: EgressContext, client: Duplex, checked: Extract<Check, { ok: false }>): void {
    this.emit(context, { host: checked.host, port: checked.port, address: checked.address, decision: denialDecision(checked.reason), reason: checked.reason });
    const [status, text] = statusOf[checked.reason];
    const body = `agentyard egress: ${checked.host}:${checked.port} refused: ${messages[checked.reason]}\n`;
    client.end(
      `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `x-agentyard-egress: ${checked.reason}\r\nconnection: close\r\n\r\n${body}`,
    );
    // The server keeps sockets half-open; a client that never closes its side must not hold this one.
    setTimeout(() => client.destroy(), 1000).unref();
  }

  private refuseResponse(context: EgressContext, response: ServerResponse, checked: Extract<Check, { ok: false }>): void {
    this.emit(context, { host: checked.host, port: checked.port, address: checked.address, decision: denialDecision(checked.reason), reason: checked.reason });
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const [status] = statusOf[checked.reason];
    const body = `agentyard egress: ${checked.host}:${checked.port} refused: ${messages[checked.reason]}\n`;
    response.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-agentyard-egress': checked.reason, connection: 'close' });
    response.end(body);
  }

  private emit(context: EgressContext, outcome: Omit<EgressEvent, 'sandboxId' | 'userId' | 'conversationId'>): void {
    const event: EgressEvent = { sandboxId: context.sandboxId, userId: context.userId, conversationId: context.conversationId, ...outcome };
    this.logger.info({ sandboxId: event.sandboxId, conversationId: event.conversationId, host: event.host, port: event.port, address: event.address, decision: event.decision, reason: event.reason }, 'egress');
    try {
      this.options.onEgress(event);
    } catch (error) {
      this.logger.error({ err: error }, 'recording egress failed');
    }
  }
}

const denialDecision = (reason: EgressReason): EgressEvent['decision'] => (reason === 'unreachable' || reason === 'unresolved' ? 'failed' : 'denied');

/** `host:port` or `[v6]:port` from a CONNECT request line; null when malformed. */
function parseAuthority(authority: string): { host: string; port: number } | null {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/\s@]+):(\d{1,5})$/.exec(authority);
  if (!match) return null;
  return { host: match[1]!, port: Number(match[2]) };
}
