/** What the first bytes of a tunnel say about the TLS server name the client asks for. */
export type ClientHelloResult =
  /** More bytes are needed. */
  | { kind: 'incomplete' }
  /** Not a TLS ClientHello (or a malformed one). */
  | { kind: 'not-tls' }
  /** A complete ClientHello; serverName is null when it has no SNI extension. */
  | { kind: 'hello'; serverName: string | null };

const recordHeaderBytes = 5;
const handshakeRecord = 0x16;
const clientHello = 0x01;
const serverNameExtension = 0x0000;
/** A ClientHello larger than this is refused rather than buffered. */
export const maxClientHelloBytes = 64 * 1024;

/**
 * Reads the server name (SNI) from a TLS ClientHello, reassembling it across records when it is split.
 * Pure: give it every byte received so far.
 */
export function readClientHello(data: Buffer): ClientHelloResult {
  const handshake: Buffer[] = [];
  let handshakeBytes = 0;
  let offset = 0;
  let needed: number | null = null;
  for (;;) {
    if (data.length < offset + recordHeaderBytes) return data.length > maxClientHelloBytes ? { kind: 'not-tls' } : { kind: 'incomplete' };
    if (data[offset] !== handshakeRecord || data[offset + 1] !== 0x03) return { kind: 'not-tls' };
    const recordLength = data.readUInt16BE(offset + 3);
    if (recordLength === 0 || recordLength > 16_384 + 2048) return { kind: 'not-tls' };
    if (data.length < offset + recordHeaderBytes + recordLength) return { kind: 'incomplete' };
    const fragment = data.subarray(offset + recordHeaderBytes, offset + recordHeaderBytes + recordLength);
    handshake.push(fragment);
    handshakeBytes += fragment.length;
    offset += recordHeaderBytes + recordLength;
    if (needed === null && handshakeBytes >= 4) {
      const head = Buffer.concat(handshake);
      if (head[0] !== clientHello) return { kind: 'not-tls' };
      needed = 4 + head.readUIntBE(1, 3);
      if (needed > maxClientHelloBytes) return { kind: 'not-tls' };
    }
    if (needed !== null && handshakeBytes >= needed) break;
  }
  return parseClientHello(Buffer.concat(handshake).subarray(4, needed!));
}

function parseClientHello(body: Buffer): ClientHelloResult {
  try {
    let offset = 2 + 32; // client_version, random
    offset += 1 + body.readUInt8(offset); // session_id
    offset += 2 + body.readUInt16BE(offset); // cipher_suites
    offset += 1 + body.readUInt8(offset); // compression_methods
    if (offset === body.length) return { kind: 'hello', serverName: null };
    const extensionsEnd = offset + 2 + body.readUInt16BE(offset);
    if (extensionsEnd > body.length) return { kind: 'not-tls' };
    offset += 2;
    let serverName: string | null = null;
    let seen = false;
    while (offset + 4 <= extensionsEnd) {
      const type = body.readUInt16BE(offset);
      const length = body.readUInt16BE(offset + 2);
      const start = offset + 4;
      if (start + length > extensionsEnd) return { kind: 'not-tls' };
      if (type === serverNameExtension) {
        // A second SNI extension could smuggle another name past a check of the first.
        if (seen) return { kind: 'not-tls' };
        seen = true;
        const name = readServerName(body.subarray(start, start + length));
        if (name === undefined) return { kind: 'not-tls' };
        serverName = name;
      }
      offset = start + length;
    }
    return { kind: 'hello', serverName };
  } catch {
    return { kind: 'not-tls' };
  }
}

/** The host_name entry of a server_name extension; undefined when malformed or holding several names. */
function readServerName(extension: Buffer): string | null | undefined {
  const listLength = extension.readUInt16BE(0);
  if (listLength + 2 !== extension.length) return undefined;
  let offset = 2;
  let name: string | null = null;
  while (offset < extension.length) {
    const type = extension.readUInt8(offset);
    const length = extension.readUInt16BE(offset + 1);
    const value = extension.subarray(offset + 3, offset + 3 + length);
    if (value.length !== length) return undefined;
    if (type === 0) {
      if (name !== null) return undefined;
      name = value.toString('latin1');
      if (!/^[A-Za-z0-9.-]+$/.test(name)) return undefined;
    }
    offset += 3 + length;
  }
  return name;
}
