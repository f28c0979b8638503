/**
 * The project's own "remote" hosts for egress tests, without any real internet: a network namespace joined to
 * the host by a veth pair, with a TLS server (443) and a plain HTTP server (80) inside, answering on a
 * public-looking address (TEST-NET-3, 203.0.113.0/24) and on a private one (10.x). A small DNS server in the
 * test process answers the names the tests use. Needs root and `ip` (iproute2) and `openssl`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestNetwork {
  /** The remote host's public-looking address (203.0.113.x). */
  publicAddress: string;
  /** The same host's private address (10.x), which the egress proxy must never connect to. */
  privateAddress: string;
  /** PEM of the self-signed certificate the remote presents (its own CA), valid for `names`. */
  caPem: string;
  /** The DNS server answering `names`, as `127.0.0.1:port` (AGENTYARD_EGRESS_DNS_SERVERS). */
  dnsServer: string;
  /** What the DNS server answers: name → IPv4 address. */
  names: Record<string, string>;
  /** Names the DNS server was asked, in order. */
  dnsQueries: string[];
  close(): Promise<void>;
}

/** Whether this process can create network namespaces (root with iproute2). */
export async function canCreateNetworkNamespaces(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  try {
    await run('ip', ['netns', 'list']);
    await run('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

/** The server run inside the namespace: it says who it is, so a test knows which host answered. */
const serverScript = `
const https = require('node:https');
const http = require('node:http');
const fs = require('node:fs');
const [key, cert] = [fs.readFileSync(process.argv[2]), fs.readFileSync(process.argv[3])];
const answer = (scheme) => (request, response) => {
  response.writeHead(200, { 'content-type': 'text/plain' });
  response.end('hello from the remote host over ' + scheme + ' for ' + request.headers.host + request.url + '\\n');
};
let listening = 0;
const ready = () => { if (++listening === 2) process.stdout.write('ready\\n'); };
https.createServer({ key, cert }, answer('https')).listen(443, '0.0.0.0', ready);
http.createServer(answer('http')).listen(80, '0.0.0.0', ready);
`;

/**
 * Creates the namespace and its servers. `names` maps each DNS name to 'public' or 'private', i.e. to the remote
 * host's public-looking or private address.
 */
export async function createTestNetwork(names: Record<string, 'public' | 'private'>): Promise<TestNetwork> {
  const id = randomBytes(3).toString('hex');
  const namespace = `ay-egress-${id}`;
  const hostLink = `ayh${id}`;
  const innerLink = `ayn${id}`;
  // A random free /30 of each range, so that test runs side by side do not collide.
  const { stdout: inUse } = await run('ip', ['-4', '-o', 'addr', 'show']);
  let slot = randomInt(1, 63) * 4;
  for (let attempt = 0; attempt < 62 && inUse.includes(`203.0.113.${slot + 1}/`); attempt++) slot = (slot % 248) + 4;
  const octet = randomInt(1, 250);
  const publicAddress = `203.0.113.${slot + 2}`;
  const privateAddress = `10.213.${octet}.${slot + 2}`;
  const directory = await mkdtemp(join(tmpdir(), 'agentyard-netns-'));
  let server: ChildProcess | null = null;
  let dns: UdpSocket | null = null;
  const killOnExit = (): void => {
    server?.kill('SIGKILL');
  };

  const teardown = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    dns?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGKILL');
      await exited;
    }
    await run('ip', ['netns', 'del', namespace]).catch(() => undefined);
    await run('ip', ['link', 'del', hostLink]).catch(() => undefined);
    await rm(directory, { recursive: true, force: true });
  };

  try {
    await run('ip', ['netns', 'add', namespace]);
    await run('ip', ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', innerLink]);
    await run('ip', ['link', 'set', innerLink, 'netns', namespace]);
    await run('ip', ['addr', 'add', `203.0.113.${slot + 1}/30`, 'dev', hostLink]);
    await run('ip', ['addr', 'add', `10.213.${octet}.${slot + 1}/30`, 'dev', hostLink]);
    await run('ip', ['link', 'set', hostLink, 'up']);
    const inside = (...args: string[]): Promise<unknown> => run('ip', ['netns', 'exec', namespace, ...args]);
    await inside('ip', 'addr', 'add', `${publicAddress}/30`, 'dev', innerLink);
    await inside('ip', 'addr', 'add', `${privateAddress}/30`, 'dev', innerLink);
    await inside('ip', 'link', 'set', innerLink, 'up');
    await inside('ip', 'link', 'set', 'lo', 'up');

    const keyPath = join(directory, 'key.pem');
    const certPath = join(directory, 'cert.pem');
    const altNames = Object.keys(names).map((name) => `DNS:${name}`).join(',');
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=agentyard egress test', '-addext', `subjectAltName=${altNames}`, '-keyout', keyPath, '-out', certPath,
    ]);
    const scriptPath = join(directory, 'server.cjs');
    await writeFile(scriptPath, serverScript);

    server = spawn('ip', ['netns', 'exec', namespace, process.execPath, scriptPath, keyPath, certPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    process.once('exit', killOnExit);
    await waitForReady(server);

    const answers: Record<string, string> = {};
    for (const [name, kind] of Object.entries(names)) answers[name.toLowerCase()] = kind === 'public' ? publicAddress : privateAddress;
    const dnsQueries: string[] = [];
    dns = await startDnsServer(answers, dnsQueries);
    const dnsPort = dns.address().port;

    return {
      publicAddress,
      privateAddress,
      caPem: await readFile(certPath, 'utf8'),
      dnsServer: `127.0.0.1:${dnsPort}`,
      names: answers,
      dnsQueries,
      close: teardown,
    };
  } catch (error) {
    await teardown();
    throw error;
  }
}

function waitForReady(server: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`the namespace's server did not start: ${output}`)), 10_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    server.stdout?.on('data', onData);
    server.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the namespace's server exited (${code}): ${output}`));
    });
  });
}

/** A DNS server (UDP) answering A queries from `answers`; AAAA gets no answer, unknown names NXDOMAIN. */
function startDnsServer(answers: Record<string, string>, queries: string[]): Promise<UdpSocket> {
  const socket = createSocket('udp4');
  socket.on('message', (message, remote) => {
    const reply = answerQuery(message, answers, queries);
    if (reply) socket.send(reply, remote.port, remote.address);
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve(socket));
  });
}

function answerQuery(query: Buffer, answers: Record<string, string>, queries: string[]): Buffer | null {
  if (query.length < 12) return null;
  const labels: string[] = [];
  let offset = 12;
  while (offset < query.length && query[offset] !== 0) {
    const length = query[offset]!;
    labels.push(query.subarray(offset + 1, offset + 1 + length).toString('ascii'));
    offset += 1 + length;
  }
  const questionEnd = offset + 5;
  if (questionEnd > query.length) return null;
  const type = query.readUInt16BE(offset + 1);
  const name = labels.join('.').toLowerCase();
  queries.push(name);
  const address = answers[name];
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  header.writeUInt16BE(address === undefined ? 0x8183 : 0x8180, 2); // response, recursion available; NXDOMAIN when unknown
  header.writeUInt16BE(1, 4);
  const answer = address !== undefined && type === 1;
  header.writeUInt16BE(answer ? 1 : 0, 6);
  const question = query.subarray(12, questionEnd);
  if (!answer) return Buffer.concat([header, question]);
  const record = Buffer.alloc(16);
  record.writeUInt16BE(0xc00c, 0); // the name, by pointer to the question
  record.writeUInt16BE(1, 2); // A
  record.writeUInt16BE(1, 4); // IN
  record.writeUInt32BE(5, 6); // TTL
  record.writeUInt16BE(4, 10);
  address.split('.').forEach((part, index) => record.writeUInt8(Number(part), 12 + index));
  return Buffer.concat([header, question, record]);
}
