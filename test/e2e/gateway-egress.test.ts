import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEgressResolver } from '../../src/gateway/egress-resolver.ts';
import { createGateway, type EgressEvent, type Gateway } from '../../src/gateway/gateway.ts';
import { type ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { canCreateNetworkNamespaces, createTestNetwork, type TestNetwork } from '../support/netns.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

// Root and iproute2 are needed for the namespace that plays the remote host; CI runs as root.
const supported = await canCreateNetworkNamespaces();
if (!supported) {
  // CI sets AGENTYARD_TEST_NETNS=required so that a missing capability fails rather than skips.
  if (process.env.AGENTYARD_TEST_NETNS === 'required') throw new Error('gateway egress tests need root, iproute2 and openssl (AGENTYARD_TEST_NETNS=required)');
  console.warn('gateway egress tests skipped: they need root, iproute2 and openssl to create network namespaces');
}

const remote = 'remote.agentyard.test';
const unlisted = 'unlisted.agentyard.test';
const internal = 'internal.agentyard.test';
const other = 'other.agentyard.test';

let network: TestNetwork;

beforeAll(async () => {
  if (!supported) return;
  network = await createTestNetwork({ [remote]: 'public', [unlisted]: 'public', [other]: 'public', [internal]: 'private' });
});

afterAll(async () => {
  await network?.close();
});

interface TunnelResult {
  /** The proxy's answer to CONNECT. */
  status: number;
  /** Why the proxy refused, from its x-agentyard-egress header. */
  refusal: string | null;
  /** What the remote answered through the tunnel, or the TLS error. */
  body: string | null;
  error: string | null;
}

/** CONNECT through a sandbox's gateway socket, then TLS with `servername` and one GET. */
function tunnel(socketPath: string, target: string, options: { servername?: string; ca?: string; raw?: Buffer } = {}): Promise<TunnelResult> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ socketPath, method: 'CONNECT', path: target });
    request.on('error', reject);
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, refusal: String(response.headers['x-agentyard-egress'] ?? '') || null, body, error: null }));
    });
    request.on('connect', (response, socket: Socket, head: Buffer) => {
      const status = response.statusCode ?? 0;
      if (status !== 200) {
        // Node reports every answer to CONNECT here, refusals included; the body follows on the socket.
        let body = head.toString();
        socket.on('data', (chunk: Buffer) => (body += chunk.toString()));
        socket.on('close', () => resolve({ status, refusal: String(response.headers['x-agentyard-egress'] ?? '') || null, body, error: null }));
        socket.on('error', () => undefined);
        return;
      }
      if (options.raw) {
        socket.write(options.raw);
        socket.on('error', () => undefined);
        socket.on('close', () => resolve({ status, refusal: null, body: null, error: 'closed' }));
        return;
      }
      const secure = tlsConnect({ socket, servername: options.servername ?? target.split(':')[0]!, ca: options.ca ?? network.caPem });
      let body = '';
      secure.on('secureConnect', () => secure.write(`GET /probe HTTP/1.1\r\nHost: ${target.split(':')[0]}\r\nConnection: close\r\n\r\n`));
      secure.on('data', (chunk: Buffer) => (body += chunk.toString()));
      secure.on('end', () => resolve({ status, refusal: null, body, error: null }));
      secure.on('error', (error) => resolve({ status, refusal: null, body: body || null, error: error.message }));
    });
    request.end();
  });
}

/** A plain-HTTP proxy request (absolute URL) through the socket. */
function proxiedGet(socketPath: string, url: string): Promise<{ status: number; body: string; refusal: string | null }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ socketPath, method: 'GET', path: url, headers: { host: new URL(url).host } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, refusal: String(response.headers['x-agentyard-egress'] ?? '') || null }));
    });
    request.on('error', reject);
    request.end();
  });
}

describe.skipIf(!supported)('the egress proxy on a sandbox’s gateway socket', () => {
  let gateway: Gateway;
  let socketDir: string;
  const events: EgressEvent[] = [];

  beforeAll(async () => {
    socketDir = await mkdtemp(join(tmpdir(), 'gw-egress-'));
    gateway = createGateway({
      upstreamUrl: 'http://127.0.0.1:1',
      credential: null,
      socketDir,
      onUsage: () => undefined,
      egress: {
        resolve: createEgressResolver({ dnsServers: [network.dnsServer] }),
        maxConnectionsPerSandbox: 2,
        helloTimeoutMs: 1000,
        onEgress: (event) => events.push(event),
      },
    });
  });

  afterAll(async () => {
    await gateway?.closeAll();
    await rm(socketDir, { recursive: true, force: true });
  });

  const open = (sandboxId: string, egressDomains: string[]) =>
    gateway.open({ sandboxId, userId: 'usr_1', conversationId: `conv_${sandboxId}`, egressDomains: [...egressDomains, internal] });

  it('reaches an allowed name over TLS end to end, and plain HTTP too, logging both', async () => {
    const { socketPath } = await open('allowed', [remote]);
    events.length = 0;

    const secure = await tunnel(socketPath, `${remote}:443`);
    const plain = await proxiedGet(socketPath, `http://${remote}/plain`);

    expect(secure.status).toBe(200);
    expect(secure.error).toBeNull();
    expect(secure.body).toContain(`hello from the remote host over https for ${remote}/probe`);
    expect(plain.status).toBe(200);
    expect(plain.body).toContain(`hello from the remote host over http for ${remote}/plain`);
    expect(events).toEqual([
      { sandboxId: 'allowed', userId: 'usr_1', conversationId: 'conv_allowed', host: remote, port: 443, address: network.publicAddress, decision: 'allowed', reason: null },
      { sandboxId: 'allowed', userId: 'usr_1', conversationId: 'conv_allowed', host: remote, port: 80, address: network.publicAddress, decision: 'allowed', reason: null },
    ]);
  });

  it('refuses an unlisted name, an IP literal, a name resolving to a private address and another port', async () => {
    const { socketPath } = await open('refusals', [remote]);
    events.length = 0;

    const results = {
      unlisted: await tunnel(socketPath, `${unlisted}:443`),
      literal: await tunnel(socketPath, `${network.publicAddress}:443`),
      bracketed: await tunnel(socketPath, '[::ffff:203.0.113.1]:443'),
      internal: await tunnel(socketPath, `${internal}:443`),
      port: await tunnel(socketPath, `${remote}:8443`),
      plainLiteral: await proxiedGet(socketPath, `http://${network.privateAddress}/`),
    };

    expect(Object.fromEntries(Object.entries(results).map(([name, result]) => [name, [result.status, result.refusal]]))).toEqual({
      unlisted: [403, 'not-allowed'],
      literal: [403, 'ip-literal'],
      bracketed: [403, 'ip-literal'],
      internal: [403, 'private-address'],
      port: [403, 'not-allowed'],
      plainLiteral: [403, 'ip-literal'],
    });
    expect(events.map((event) => [event.host, event.decision, event.reason, event.address])).toEqual([
      [unlisted, 'denied', 'not-allowed', null],
      [network.publicAddress, 'denied', 'ip-literal', null],
      ['::ffff:203.0.113.1', 'denied', 'ip-literal', null],
      [internal, 'denied', 'private-address', network.privateAddress],
      [remote, 'denied', 'not-allowed', null],
      [network.privateAddress, 'denied', 'ip-literal', null],
    ]);
    // The names outside the list were never even looked up.
    expect(network.dnsQueries).not.toContain(unlisted);
  });

  it('reports a listed name that does not resolve as failed, not allowed', async () => {
    const { socketPath } = await open('nowhere', ['nowhere.agentyard.test']);
    events.length = 0;
    expect(await tunnel(socketPath, 'nowhere.agentyard.test:443')).toMatchObject({ status: 502, refusal: 'unresolved' });
    expect(events).toMatchObject([{ host: 'nowhere.agentyard.test', decision: 'failed', reason: 'unresolved', address: null }]);
    expect(network.dnsQueries).toContain('nowhere.agentyard.test');
  });

  it('refuses everything when the agent names no domains', async () => {
    const { socketPath } = await gateway.open({ sandboxId: 'none', userId: 'usr_1', conversationId: 'conv_none' });
    expect(await tunnel(socketPath, `${remote}:443`)).toMatchObject({ status: 403, refusal: 'not-allowed' });
    expect((await proxiedGet(socketPath, `http://${remote}/`)).status).toBe(403);
  });

  it('closes a tunnel whose TLS server name differs from the CONNECT target, or that carries no TLS', async () => {
    const { socketPath } = await open('sni', [remote, other]);
    events.length = 0;

    const mismatch = await tunnel(socketPath, `${remote}:443`, { servername: other });
    const notTls = await tunnel(socketPath, `${remote}:443`, { raw: Buffer.from(`GET / HTTP/1.1\r\nHost: ${other}\r\n\r\n`) });

    expect(mismatch.status).toBe(200);
    // The proxy hung up right after the ClientHello: nothing came back from the remote.
    expect(mismatch.body ?? '').toBe('');
    expect(notTls.error).toBe('closed');
    expect(events.map((event) => [event.host, event.decision, event.reason])).toEqual([
      [remote, 'denied', 'sni-mismatch'],
      [remote, 'denied', 'not-tls'],
    ]);
  });

  it('caps the connections one sandbox holds open at once', async () => {
    const { socketPath } = await open('capped', [remote]);
    // Two tunnels that stay open: the TLS handshake never starts.
    const holders = await Promise.all(
      [1, 2].map(
        () =>
          new Promise<Socket>((resolve, reject) => {
            const request = httpRequest({ socketPath, method: 'CONNECT', path: `${remote}:443` });
            request.on('connect', (_response, socket: Socket) => resolve(socket));
            request.on('error', reject);
            request.end();
          }),
      ),
    );
    const third = await tunnel(socketPath, `${remote}:443`);
    expect([third.status, third.refusal]).toEqual([429, 'connection-limit']);
    for (const socket of holders) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = await tunnel(socketPath, `${remote}:443`);
    expect(after.status).toBe(200);
    expect(after.body).toContain('hello from the remote host');
  });
});

describe.skipIf(!supported)('egress from a real sandbox', () => {
  let test: TestPlatform;
  let alice: ApiClient;

  beforeAll(async () => {
    test = await startTestPlatform({ env: { AGENTYARD_EGRESS_DNS_SERVERS: network.dnsServer } });
    alice = await test.api.registerWithToken('alice@example.com');
  });

  afterAll(() => test?.close());

  /** Runs a shell script in the conversation's sandbox through the agent's Bash tool; returns its output. */
  async function runInSandbox(conversationId: string, script: string): Promise<string> {
    expect(script).not.toContain('>>');
    const sent = await alice.request('POST', `/api/conversations/${conversationId}/messages`, { text: `SCN_TOOLS BASH<<${script}>>` });
    expect(sent.status).toBe(202);
    const events = await alice.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId), timeoutMs: 60_000 });
    const ended = events.find((event) => event.event === 'tool.ended' && event.data.turnId === sent.body.turnId);
    expect(ended, JSON.stringify(events.map((event) => event.data))).toBeDefined();
    return ended!.data.output as string;
  }

  /** Puts the remote's certificate in the workspace, so that curl verifies the remote end to end. */
  const writeCa = (): string => `echo ${Buffer.from(network.caPem).toString('base64')} | base64 -d > ca.pem`;

  const marker = (output: string, name: string): string => new RegExp(`^${name}=(.*)$`, 'm').exec(output)?.[1]?.trim() ?? `(no ${name} in ${output})`;

  it('lets curl reach an allowed name through the proxy and refuses the rest, all in the conversation’s egress log', async () => {
    const agent = await alice.request('POST', '/api/agents', {
      name: 'fetcher',
      model: 'claude-sonnet-5',
      limits: { memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 120 },
      egressDomains: [remote, internal],
    });
    expect(agent.status).toBe(201);
    expect(agent.body.egressDomains).toEqual([remote, internal]);
    const { body: conversation } = await alice.request('POST', '/api/conversations', { agentId: agent.body.id });

    const get = (url: string): string => `curl -sS --max-time 8 --cacert ca.pem -o body.txt -w '%{http_code}' ${url} 2>err.txt; echo " exit=$? $(cat body.txt err.txt 2>/dev/null | tr '\\n' ' ')"`;
    const output = await runInSandbox(
      conversation.id,
      [
        writeCa(),
        'echo "PROXY=$HTTPS_PROXY"',
        `echo "ALLOWED=$(${get(`https://${remote}/from-sandbox`)})"`,
        `echo "PLAIN=$(${get(`http://${remote}/plain-from-sandbox`)})"`,
        `echo "UNLISTED=$(${get(`https://${unlisted}/`)})"`,
        `echo "LITERAL=$(${get(`https://${network.publicAddress}/`)})"`,
        `echo "INTERNAL=$(${get(`https://${internal}/`)})"`,
        `echo "DIRECT=$( (curl -sS --max-time 5 --noproxy '*' --cacert ca.pem https://${remote}/ 2>&1; echo " exit=$?") | tr '\n' ' ')"`,
        `timeout 5 bash -c 'exec 3<>/dev/tcp/${network.publicAddress}/443'; echo "DIRECT_TCP=$?"`,
      ].join('; '),
    );

    expect(marker(output, 'PROXY')).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(marker(output, 'ALLOWED')).toMatch(/^200 exit=0 hello from the remote host over https for remote\.agentyard\.test\/from-sandbox/);
    expect(marker(output, 'PLAIN')).toMatch(/^200 exit=0 hello from the remote host over http for remote\.agentyard\.test\/plain-from-sandbox/);
    for (const refused of ['UNLISTED', 'LITERAL', 'INTERNAL']) {
      expect(marker(output, refused), refused).toMatch(/exit=56 .*CONNECT tunnel failed, response 403/);
    }
    // Without the proxy there is no network at all: no DNS, no route.
    expect(marker(output, 'DIRECT')).toMatch(/exit=(6|7)$/);
    expect(marker(output, 'DIRECT_TCP')).not.toBe('0');

    const log = await alice.request('GET', `/api/conversations/${conversation.id}/egress`);
    expect(log.status).toBe(200);
    expect(log.body.connections.map((entry: { host: string; port: number; decision: string; reason: string | null }) => [entry.host, entry.port, entry.decision, entry.reason])).toEqual([
      [remote, 443, 'allowed', null],
      [remote, 80, 'allowed', null],
      [unlisted, 443, 'denied', 'not-allowed'],
      [network.publicAddress, 443, 'denied', 'ip-literal'],
      [internal, 443, 'denied', 'private-address'],
    ]);
    // Another user cannot read it.
    const bob = await test.api.registerWithToken('bob@example.com');
    expect((await bob.request('GET', `/api/conversations/${conversation.id}/egress`)).status).toBe(404);
  });

  it('gives the built-in agent, which names no domains, no egress at all', async () => {
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    const output = await runInSandbox(conversation.id, `${writeCa()}; echo "CURL=$( (curl -sS --max-time 5 --cacert ca.pem https://${remote}/ 2>&1; echo " exit=$?") | tr '\n' ' ')"`);
    expect(marker(output, 'CURL')).toMatch(/CONNECT tunnel failed, response 403.* exit=56/);
    const log = await alice.request('GET', `/api/conversations/${conversation.id}/egress`);
    expect(log.body.connections).toMatchObject([{ host: remote, decision: 'denied', reason: 'not-allowed' }]);
  });

  it('applies a change to the agent’s egress domains from the next turn', async () => {
    const agent = await alice.request('POST', '/api/agents', { name: 'late', model: 'claude-sonnet-5', limits: { memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 120 } });
    const { body: conversation } = await alice.request('POST', '/api/conversations', { agentId: agent.body.id });
    const probe = `${writeCa()}; echo "CODE=$(curl -s --max-time 5 --cacert ca.pem -o /dev/null -w '%{http_code}' https://${remote}/)"`;
    expect(marker(await runInSandbox(conversation.id, probe), 'CODE')).toBe('000');
    const patched = await alice.request('PATCH', `/api/agents/${agent.body.id}`, { egressDomains: [remote] });
    expect(patched.body.egressDomains).toEqual([remote]);
    expect(marker(await runInSandbox(conversation.id, probe), 'CODE')).toBe('200');
  });
});

describe('administrators and agents’ egress', () => {
  let test: TestPlatform;

  beforeAll(async () => {
    test = await startTestPlatform();
  });
  afterAll(() => test?.close());

  it('lists which agents may reach what, and lets an administrator narrow any agent’s domains', async () => {
    const admin = await test.api.registerWithToken('admin@example.com');
    const bob = await test.api.registerWithToken('bob@example.com');
    const created = await bob.request('POST', '/api/agents', {
      name: 'builder',
      model: 'claude-sonnet-5',
      limits: { memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 60 },
      egressDomains: ['Packages.EXAMPLE.com', '*.github.com', 'example.com:8443'],
    });
    expect(created.body.egressDomains).toEqual(['packages.example.com', '*.github.com', 'example.com:8443']);
    for (const bad of [['10.0.0.1'], ['localhost'], ['*.com'], ['a.example:70000'], ['http://x.example']]) {
      expect((await bob.request('POST', '/api/agents', { name: 'x', model: 'claude-sonnet-5', limits: { memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 60 }, egressDomains: bad })).status, bad[0]).toBe(400);
    }

    expect((await bob.request('GET', '/api/admin/egress')).status).toBe(403);
    const listed = await admin.request('GET', '/api/admin/egress');
    expect(listed.body.agents).toEqual([
      expect.objectContaining({ agentId: created.body.id, name: 'builder', ownerEmail: 'bob@example.com', egressDomains: ['packages.example.com', '*.github.com', 'example.com:8443'] }),
    ]);
    expect((await admin.request('GET', '/api/admin/egress?all=true')).body.agents.map((agent: { agentId: string }) => agent.agentId)).toEqual(['agt_default', created.body.id]);

    const narrowed = await admin.request('PUT', `/api/admin/agents/${created.body.id}/egress`, { egressDomains: ['packages.example.com'] });
    expect(narrowed.status).toBe(200);
    expect((await bob.request('GET', `/api/agents/${created.body.id}`)).body.egressDomains).toEqual(['packages.example.com']);
    expect((await bob.request('PUT', `/api/admin/agents/${created.body.id}/egress`, { egressDomains: [] })).status).toBe(403);
    expect((await admin.request('PUT', '/api/admin/agents/agt_missing/egress', { egressDomains: [] })).status).toBe(404);
  });
});
