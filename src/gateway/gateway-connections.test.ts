import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';

/** What a raw connection to a gateway socket received, and whether the gateway closed it. */
interface Received {
  data: string;
  closed: boolean;
}

function connectRaw(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Collects what arrives on the socket until the gateway closes it, or `waitMs` pass (then it is still open). */
function receive(socket: Socket, waitMs: number): Promise<Received> {
  return new Promise((resolve) => {
    let data = '';
    const onData = (chunk: Buffer): void => void (data += chunk.toString('utf8'));
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve({ data, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', onData);
    socket.on('error', () => undefined);
    socket.once('close', () => finish(true));
  });
}

/** Sends `HEAD /` (the CLI's preconnect, answered by the gateway itself) on a kept-alive connection; resolves with the answer's status line. */
function headOnce(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const onData = (chunk: Buffer): void => {
      data += chunk.toString('utf8');
      if (data.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(data.split('\r\n')[0]!);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before an answer: ${JSON.stringify(data)}`)));
    socket.write('HEAD / HTTP/1.1\r\nhost: gateway\r\nconnection: keep-alive\r\n\r\n');
  });
}

let socketDir: string;
let gateway: Gateway;
const opened: Socket[] = [];

function startGateway(overrides: Partial<GatewayOptions>): Gateway {
  gateway = createGateway({
    // Nothing here reaches the upstream: the gateway answers HEAD / itself.
    upstreamUrl: 'http://127.0.0.1:9',
    credential: { kind: 'api-key', value: 'sk-ant-unused' },
    socketDir,
    onUsage: () => undefined,
    firstRequestTimeoutMs: 60_000,
    ...overrides,
  });
  return gateway;
}

const grant = (sandboxId: string) => ({ sandboxId, userId: `user_${sandboxId}`, conversationId: `conv_${sandboxId}` });

async function hold(socketPath: string, count: number): Promise<Socket[]> {
  const sockets = await Promise.all(Array.from({ length: count }, () => connectRaw(socketPath)));
  opened.push(...sockets);
  return sockets;
}

/** Connects until the gateway accepts (it notices a closed connection a moment after the client closed it). */
async function connectAccepted(socketPath: string): Promise<Socket> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [socket] = await hold(socketPath, 1);
    const answer = await headOnce(socket!).catch((error: unknown) => String(error));
    if (answer === 'HTTP/1.1 200 OK') return socket!;
    if (Date.now() > deadline) throw new Error(`never accepted again: ${answer}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeEach(async () => {
  socketDir = await mkdtemp(join(tmpdir(), 'gw-conn-'));
});

afterEach(async () => {
  for (const socket of opened.splice(0)) socket.destroy();
  await gateway?.closeAll();
  await rm(socketDir, { recursive: true, force: true });
});

describe('Gateway connection limits', () => {
  it('counts every connection of a sandbox, idle or kept alive, and answers one past the cap 429 and closes it', async () => {
    startGateway({ maxConnectionsPerSandbox: 3 });
    const { socketPath } = await gateway.open(grant('flood'));
    const [keptAlive, ...idle] = await hold(socketPath, 3);
    expect(await headOnce(keptAlive!)).toBe('HTTP/1.1 200 OK');
    expect(idle).toHaveLength(2);

    const [over] = await hold(socketPath, 1);
    const refused = await receive(over!, 10_000);
    expect(refused.closed).toBe(true);
    expect(refused.data).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
    expect(JSON.parse(refused.data.split('\r\n\r\n')[1]!)).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: 'at most 3 connections at once per sandbox' },
    });

    // Another sandbox is not affected.
    const { socketPath: otherPath } = await gateway.open(grant('neighbour'));
    const [neighbour] = await hold(otherPath, 1);
    expect(await headOnce(neighbour!)).toBe('HTTP/1.1 200 OK');

    // A closed connection gives its place back.
    idle[0]!.destroy();
    const again = await connectAccepted(socketPath);
    expect(again.destroyed).toBe(false);
  });

  it('refuses every sandbox with 503 once all of them together hold the server’s budget', async () => {
    startGateway({ maxConnectionsPerSandbox: 10, maxConnections: 2 });
    const first = await gateway.open(grant('first'));
    const second = await gateway.open(grant('second'));
    await hold(first.socketPath, 2);
    const [over] = await hold(second.socketPath, 1);
    const refused = await receive(over!, 10_000);
    expect(refused.closed).toBe(true);
    expect(refused.data).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(refused.data).toContain('overloaded_error');
  });

  it('closes a connection that sends no request in time, but keeps one that did', async () => {
    startGateway({ maxConnectionsPerSandbox: 2, firstRequestTimeoutMs: 300 });
    const { socketPath } = await gateway.open(grant('idle'));
    const [silent, talking] = await hold(socketPath, 2);
    expect(await headOnce(talking!)).toBe('HTTP/1.1 200 OK');
    const silence = await receive(silent!, 10_000);
    expect(silence).toEqual({ data: '', closed: true });
    // Well past the timeout, the connection that sent a request is still served.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await headOnce(talking!)).toBe('HTTP/1.1 200 OK');
    // And the closed one's place is free again.
    const [next] = await hold(socketPath, 1);
    expect(await headOnce(next!)).toBe('HTTP/1.1 200 OK');
  });
});
