import { spawn } from 'node:child_process';
import net from 'node:net';
import type { Readable } from 'node:stream';

/** One Server-Sent Event as it came over the wire. */
export interface RawEvent {
  id: number | null;
  event: string;
  data: string;
}

/**
 * A conversation's event stream requested by a client that does not read until told to, as a stuck browser tab or a
 * hostile client: the server sees its socket fill up.
 *
 * Over loopback (64 KiB segments) the kernel takes about 4 MB into each socket's buffers before the server sees a
 * full socket, whatever the client does. `via: 'socat'` connects through socat with an Ethernet-sized segment and a
 * small receive buffer instead, so only a few hundred KiB are in flight, as over a real network; it costs a process
 * per stream. `via: 'socket'` is a plain TCP socket of this process.
 */
export class RawEventStream {
  private readonly chunks: Buffer[] = [];

  private constructor(
    private readonly input: Readable,
    /** Resolves when the connection is closed and everything the server sent was read. */
    readonly ended: Promise<void>,
    private readonly close: () => void,
  ) {}

  /** Connects and sends the request; nothing is read until `resume()` (or `statusLine()`). */
  static open(baseUrl: string, path: string, headers: Record<string, string>, options: { via: 'socat' | 'socket' } = { via: 'socat' }): RawEventStream {
    const url = new URL(baseUrl);
    const lines = [`GET ${path} HTTP/1.1`, `host: ${url.host}`, 'accept: text/event-stream', ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
    const request = `${lines.join('\r\n')}\r\n\r\n`;
    if (options.via === 'socket') {
      const socket = net.connect({ host: url.hostname, port: Number(url.port) });
      socket.pause();
      socket.on('error', () => undefined);
      socket.write(request);
      return new RawEventStream(socket, new Promise((resolve) => socket.once('close', () => resolve())), () => socket.destroy());
    }
    const child = spawn('socat', ['STDIO', `TCP:${url.hostname}:${url.port},mss=1460,rcvbuf=4096`], { stdio: ['pipe', 'pipe', 'ignore'] });
    child.stdin.on('error', () => undefined);
    // stdin stays open: a half-closed connection would end the request.
    child.stdin.write(request);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return new RawEventStream(child.stdout, exited, () => child.kill('SIGTERM'));
  }

  /** The response's status line, from the first bytes that arrived (the rest stays unread). */
  async statusLine(): Promise<string> {
    if (this.chunks.length === 0) {
      const stdout = this.input;
      const first = await new Promise<Buffer>((resolve) => {
        const readable = (): void => {
          const data = stdout.read() as Buffer | null;
          if (!data) return;
          stdout.off('readable', readable);
          resolve(data);
        };
        stdout.on('readable', readable);
      });
      this.chunks.push(first);
    }
    return this.chunks[0]!.toString('latin1').split('\r\n', 1)[0]!;
  }

  /** Starts reading, keeping everything for `events()`. */
  resume(): void {
    this.input.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    this.input.resume();
  }

  /** Whether event `id` arrived whole, looking at the last 64 KiB read only: cheap enough to poll while megabytes arrive. */
  receivedEvent(id: number): boolean {
    let tail = '';
    for (let index = this.chunks.length - 1; index >= 0 && tail.length < 64 * 1024; index -= 1) tail = this.chunks[index]!.toString('latin1') + tail;
    const start = tail.lastIndexOf(`id: ${id}\n`);
    return start >= 0 && tail.indexOf('\n\n', start) >= 0;
  }

  /** Closes the connection. */
  async destroy(): Promise<void> {
    this.close();
    await this.ended;
  }

  /** The complete events read so far; a last event cut off mid-way is left out. */
  events(): RawEvent[] {
    const received = Buffer.concat(this.chunks);
    const bodyStart = received.indexOf('\r\n\r\n');
    if (bodyStart < 0) return [];
    const blocks = dechunk(received.subarray(bodyStart + 4)).split('\n\n');
    blocks.pop(); // incomplete (or empty) remainder
    const events: RawEvent[] = [];
    for (const block of blocks) {
      let id: number | null = null;
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') id = Number(value);
        else if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) events.push({ id, event, data: data.join('\n') });
    }
    return events;
  }
}

/** Joins the chunks of an HTTP/1.1 chunked body; a last chunk cut off mid-way contributes what arrived of it. */
function dechunk(buffer: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const lineEnd = buffer.indexOf('\r\n', offset);
    if (lineEnd < 0) break;
    const size = Number.parseInt(buffer.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    const start = lineEnd + 2;
    parts.push(buffer.subarray(start, Math.min(start + size, buffer.length)));
    offset = start + size + 2;
  }
  return Buffer.concat(parts).toString('utf8');
}
