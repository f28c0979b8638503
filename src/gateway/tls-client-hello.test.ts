import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { readClientHello } from './tls-client-hello.ts';

/** The first bytes a real TLS client (Node's OpenSSL) sends, captured by a plain TCP server. */
async function captureClientHello(options: { servername?: string }): Promise<Buffer> {
  let resolveCapture!: (hello: Buffer) => void;
  const captured = new Promise<Buffer>((resolve) => (resolveCapture = resolve));
  const server = createServer((socket) => {
    let data = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 5 && data.length >= 5 + data.readUInt16BE(3)) {
        resolveCapture(data);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, rejectUnauthorized: false, ...options });
  client.on('error', () => undefined);
  const hello = await captured;
  client.destroy();
  server.close();
  return hello;
}

let withName: Buffer;
let withoutName: Buffer;

beforeAll(async () => {
  withName = await captureClientHello({ servername: 'remote.agentyard.test' });
  // Node sends no SNI when connecting to an IP address without a servername.
  withoutName = await captureClientHello({});
});

describe('readClientHello', () => {
  it('reads the server name of a real ClientHello', () => {
    expect(readClientHello(withName)).toEqual({ kind: 'hello', serverName: 'remote.agentyard.test' });
  });

  it('asks for more bytes until the hello is complete, however it is split', () => {
    for (const cut of [0, 1, 4, 5, 6, 40, withName.length - 1]) {
      expect(readClientHello(withName.subarray(0, cut)), `cut at ${cut}`).toEqual({ kind: 'incomplete' });
    }
  });

  it('reassembles a hello split across two TLS records', () => {
    const body = withName.subarray(5);
    const half = Math.floor(body.length / 2);
    const record = (fragment: Buffer): Buffer => {
      const header = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
      header.writeUInt16BE(fragment.length, 3);
      return Buffer.concat([header, fragment]);
    };
    expect(readClientHello(Buffer.concat([record(body.subarray(0, half)), record(body.subarray(half))]))).toEqual({
      kind: 'hello',
      serverName: 'remote.agentyard.test',
    });
  });

  it('reports a hello without SNI', () => {
    expect(readClientHello(withoutName)).toEqual({ kind: 'hello', serverName: null });
  });

  it('refuses what is not TLS', () => {
    expect(readClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: remote.agentyard.test\r\n\r\n'))).toEqual({ kind: 'not-tls' });
    expect(readClientHello(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'))).toEqual({ kind: 'not-tls' });
    const corrupted = Buffer.from(withName);
    corrupted[5] = 0x02; // a ServerHello, not a ClientHello
    expect(readClientHello(corrupted)).toEqual({ kind: 'not-tls' });
  });
});
