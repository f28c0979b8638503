import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../support/api-client.ts';
import { platformSecret, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { testConfiguration } from '../support/test-configuration.ts';
import { createSandboxProber, fromBase64, hiddenAssignment, marker, markers, type SandboxProber } from '../support/sandbox-probes.ts';

/** Host addresses other than loopback (link-local IPv6 left out: it needs a zone to be dialled). */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry !== undefined && !entry.internal && !entry.address.startsWith('fe80:'))
    .map((entry) => entry!.address);
}

/** Opens a TCP connection from the host itself (the control for "the sandbox cannot"); its local port, or null. */
function connectFromHost(host: string, port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 3_000 });
    socket.once('connect', () => {
      resolve(socket.localPort ?? null);
      socket.destroy();
    });
    socket.once('error', () => resolve(null));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(null);
    });
  });
}

describe('isolation: sandboxes from each other and from the host, users from each other', () => {
  let test: TestPlatform;
  let prober: SandboxProber;
  let alice: ApiClient;
  let bob: ApiClient;
  /** Alice's conversation that holds the canary, her second one, and Bob's. */
  let canaryConversation: string;
  let aliceOther: string;
  let bobConversation: string;

  beforeAll(async () => {
    test = await startTestPlatform();
    prober = createSandboxProber(test.model);
    prober.install();
    alice = await test.api.registerWithToken('alice@example.com');
    bob = await test.api.registerWithToken('bob@example.com');
    const created = await Promise.all([
      alice.request('POST', '/api/conversations', { title: 'canary' }),
      alice.request('POST', '/api/conversations', { title: 'other' }),
      bob.request('POST', '/api/conversations', { title: 'bob' }),
    ]);
    for (const response of created) expect(response.status).toBe(201);
    [canaryConversation, aliceOther, bobConversation] = created.map((response) => response.body.id as string) as [string, string, string];
  });
  afterAll(() => test?.close());

  it('a sandbox cannot read another conversation’s workspace, home or /tmp', async () => {
    const id = randomBytes(6).toString('hex');
    const value = `canary-value-${randomBytes(16).toString('hex')}`;
    const fileName = `canary-${id}.txt`;
    const written = await prober.run(
      alice,
      canaryConversation,
      [
        hiddenAssignment('V', value),
        `for directory in /workspace /home/agent /tmp; do printf '%s\\n' "$V" > "$directory/${fileName}" || exit 1; done`,
        'echo WROTE=$?',
      ].join('\n'),
    );
    expect(marker(written.output, 'WROTE')).toBe('0');
    const hostWorkspace = test.workspaceDir(canaryConversation);
    expect(readFileSync(path.join(hostWorkspace, fileName), 'utf8')).toBe(`${value}\n`);

    // The same search runs in every sandbox; in the canary's own sandbox it must find all three copies.
    const search = [
      hiddenAssignment('V', value),
      `echo "LISTING=$(ls -A /workspace | tr '\\n' ' ')"`,
      `echo "NAMES=$( { find / -xdev -name 'canary*' -print; find /workspace /home /tmp /run /opt /dev/shm -name 'canary*' -print; } 2>/dev/null | sort -u | tr '\\n' ' ')"`,
      `echo "VALUE_FILES=$(grep -rlsF -D skip -f <(printf '%s\\n' "$V") /workspace /home /tmp /run /dev/shm | sort -u | tr '\\n' ' ')"`,
      `for host_path in ${[hostWorkspace, path.dirname(hostWorkspace), test.dataDir].map((entry) => `'${entry}'`).join(' ')}; do`,
      '  if [ -e "$host_path" ]; then echo "HOST_PATH_SEEN=$host_path"; fi',
      'done',
      'echo SEARCH_DONE=1',
    ].join('\n');
    const [own, sameUser, otherUser] = await Promise.all([
      prober.run(alice, canaryConversation, search),
      prober.run(alice, aliceOther, search),
      prober.run(bob, bobConversation, search),
    ]);

    const copies = ['/home/agent', '/tmp', '/workspace'].map((directory) => `${directory}/${fileName}`);
    for (const result of [own, sameUser, otherUser]) expect(marker(result.output, 'SEARCH_DONE')).toBe('1');
    expect(marker(own.output, 'LISTING')).toContain(fileName);
    expect(marker(own.output, 'NAMES').trim().split(' ').sort()).toEqual(copies);
    expect(marker(own.output, 'VALUE_FILES').trim().split(' ').sort()).toEqual(copies);

    for (const result of [sameUser, otherUser]) {
      const found = markers(result.output);
      expect(found.LISTING, result.output).not.toContain('canary');
      expect(found.NAMES?.trim(), result.output).toBe('');
      expect(found.VALUE_FILES?.trim(), result.output).toBe('');
      expect(found.HOST_PATH_SEEN, result.output).toBeUndefined();
    }
    expect(existsSync(path.join(test.workspaceDir(aliceOther), fileName))).toBe(false);
  });

  it('a sandbox cannot open any network connection but the gateway bridge', async () => {
    // A listener on every host address, TCP and UDP: anything reaching it would show up here.
    const accepted: string[] = [];
    const listener: Server = createServer((socket) => {
      accepted.push(`${socket.remoteAddress}:${socket.remotePort}`);
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '::', resolve));
    const udp: UdpSocket = createSocket({ type: 'udp6' });
    const datagrams: string[] = [];
    udp.on('message', (_message, remote) => datagrams.push(remote.address));
    await new Promise<void>((resolve) => udp.bind(0, '::', resolve));
    try {
      const tcpPort = (listener.address() as { port: number }).port;
      const udpPort = udp.address().port;
      const platformPort = Number(new URL(test.platform.url).port);
      const addresses = hostAddresses();
      expect(addresses.length, 'this host should have a non-loopback address to test').toBeGreaterThan(0);
      const targets: Array<[string, string, number]> = [
        ['PLATFORM', '127.0.0.1', platformPort],
        ['LOOPBACK_LISTENER', '127.0.0.1', tcpPort],
        ['LOOPBACK6_LISTENER', '::1', tcpPort],
        ...addresses.map((address, index): [string, string, number] => [`HOST_ADDRESS_${index}`, address, tcpPort]),
        ['OUTSIDE_HTTP', '1.1.1.1', 80],
        ['OUTSIDE_UNROUTABLE', '10.255.255.1', 80],
      ];
      // The controls: from the host, every local target does accept connections.
      const controlPorts = new Set<number>();
      for (const [name, host, port] of targets.filter(([name]) => !name.startsWith('OUTSIDE'))) {
        const localPort = await connectFromHost(host, port);
        expect(localPort, `${name} ${host}:${port} from the host`).not.toBeNull();
        controlPorts.add(localPort!);
      }

      const result = await prober.run(
        alice,
        aliceOther,
        [
          `tcp() { timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3"; echo "$1=$?"; }`,
          ...targets.map(([name, host, port]) => `tcp ${name} ${host} ${port}`),
          `timeout 3 bash -c 'echo datagram > /dev/udp/1.1.1.1/53'; echo "UDP_OUTSIDE=$?"`,
          ...addresses.map((address, index) => `timeout 3 bash -c 'echo datagram > /dev/udp/${address}/${udpPort}'; echo "UDP_HOST_${index}=$?"`),
          'timeout 5 getent hosts example.com; echo "DNS=$?"',
          `echo "INTERFACES=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')"`,
          `echo "SYS_NET=$(ls /sys/class/net 2>/dev/null | tr '\\n' ' ')"`,
          // The one way out: the gateway bridge named by ANTHROPIC_BASE_URL answers HEAD /.
          'bridge=${ANTHROPIC_BASE_URL#http://}; echo "BRIDGE_ADDRESS=$bridge"',
          `exec 3<>"/dev/tcp/\${bridge%:*}/\${bridge##*:}" && printf 'HEAD / HTTP/1.0\\r\\nHost: gateway\\r\\n\\r\\n' >&3 && IFS= read -t 3 -r status <&3; echo "BRIDGE=\${status%$'\\r'}"`,
        ].join('\n'),
        { commandTimeoutMs: 60_000 },
      );

      const found = markers(result.output);
      expect(found.BRIDGE_ADDRESS, result.output).toBe('127.0.0.1:4180');
      expect(found.BRIDGE, result.output).toMatch(/^HTTP\/1\.[01] 200 /);
      for (const [name] of targets) {
        expect(found[name], `${name}:\n${result.output}`).toBeDefined();
        expect(found[name], `${name}:\n${result.output}`).not.toBe('0');
      }
      expect(found.UDP_OUTSIDE, result.output).toBeDefined();
      expect(found.UDP_OUTSIDE).not.toBe('0');
      for (const index of addresses.keys()) expect(found[`UDP_HOST_${index}`], result.output).toMatch(/^[1-9]\d*$/);
      expect(found.DNS, result.output).toMatch(/^[1-9]\d*$/);
      expect(found.INTERFACES?.trim(), result.output).toBe('lo');
      expect(found.SYS_NET?.trim() ?? '', result.output).toMatch(/^(lo)?$/);
      expect(accepted.filter((peer) => !controlPorts.has(Number(peer.slice(peer.lastIndexOf(':') + 1))))).toEqual([]);
      expect(datagrams).toEqual([]);
    } finally {
      listener.close();
      udp.close();
    }
  });

  it('a sandbox never holds the platform credential; only the model receives it', async () => {
    const fragments = [platformSecret, platformSecret.slice(13, 40), platformSecret.slice(-20)];
    const control = `control-${randomBytes(12).toString('hex')}`;
    const places = '/workspace /home /tmp /run /etc /opt';
    const result = await prober.run(
      alice,
      aliceOther,
      [
        ...fragments.map((fragment, index) => hiddenAssignment(`S${index}`, fragment)),
        hiddenAssignment('C', control),
        `secrets() { printf '%s\\n' ${fragments.map((_, index) => `"$S${index}"`).join(' ')}; }`,
        'token=$ANTHROPIC_API_KEY',
        `echo "TOKEN_B64=$(printf %s "$token" | base64 -w0)"`,
        'echo "ENV_SECRET_LINES=$(env | grep -cF -f <(secrets))"',
        'echo "ENV_TOKEN_LINES=$(env | grep -cF -f <(printf \'%s\\n\' "$token"))"',
        'readable=0; token_files=0; secret_files=""',
        'for file in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do',
        `  content=$(tr '\\0' '\\n' < "$file" 2>/dev/null) || continue`,
        '  readable=$((readable + 1))',
        '  if printf %s "$content" | grep -qF -f <(secrets); then secret_files="$secret_files $file"; fi',
        `  if printf %s "$content" | grep -qF -f <(printf '%s\\n' "$token"); then token_files=$((token_files + 1)); fi`,
        'done',
        'echo "PROC_READABLE=$readable"',
        'echo "PROC_TOKEN_FILES=$token_files"',
        'echo "PROC_SECRET_FILES=$secret_files"',
        // The control proves the file search reads these places: it must find the file written just now.
        `printf '%s\\n' "$C" > /tmp/credential-control.txt`,
        `echo "FILE_CONTROL=$(grep -rlsF -D skip -f <(printf '%s\\n' "$C") ${places} | tr '\\n' ' ')"`,
        `echo "FILE_SECRET=$(grep -rlsF -D skip -f <(secrets) ${places} | tr '\\n' ' ')"`,
      ].join('\n'),
    );

    const found = markers(result.output);
    const token = fromBase64(marker(result.output, 'TOKEN_B64'));
    expect(token).toMatch(/^sbx_/);
    expect(token).not.toBe(platformSecret);
    expect(found.ENV_TOKEN_LINES, result.output).toBe('1');
    expect(found.ENV_SECRET_LINES, result.output).toBe('0');
    // At least the CLI's and the shell's environ and cmdline were read, and the CLI's environ holds the token.
    expect(Number(found.PROC_READABLE), result.output).toBeGreaterThanOrEqual(4);
    expect(Number(found.PROC_TOKEN_FILES), result.output).toBeGreaterThanOrEqual(1);
    expect(found.PROC_SECRET_FILES?.trim(), result.output).toBe('');
    expect(found.FILE_CONTROL?.trim(), result.output).toBe('/tmp/credential-control.txt');
    expect(found.FILE_SECRET?.trim(), result.output).toBe('');
    expect(result.output).not.toContain(platformSecret);

    // The model saw the platform credential on every call, and never the sandbox token.
    const messageRequests = test.model.requests.filter((request) => request.path.startsWith('/v1/messages'));
    expect(messageRequests.length).toBeGreaterThanOrEqual(2);
    for (const request of messageRequests) expect(request.headers['x-api-key']).toBe(platformSecret);
    for (const request of test.model.requests) {
      expect(JSON.stringify(request.headers)).not.toContain(token);
      expect(JSON.stringify(request.body)).not.toContain(token);
    }
  });

  it('a sandbox cannot see or signal host processes', async () => {
    const hostPid = process.pid;
    const result = await prober.run(
      alice,
      aliceOther,
      [
        'for directory in /proc/[0-9]*; do',
        `  echo "PROC_\${directory#/proc/}=$(cat "$directory/comm" 2>/dev/null)|$(tr '\\0' ' ' < "$directory/cmdline" 2>/dev/null)"`,
        'done',
        'echo "PROC_COUNT=$(ls -d /proc/[0-9]* | wc -l)"',
        `if [ -e /proc/${hostPid} ]; then echo "HOST_PID=visible"; else echo "HOST_PID=absent"; fi`,
        `kill -0 ${hostPid} 2>/dev/null; echo "KILL_HOST_PID=$?"`,
      ].join('\n'),
    );

    const found = markers(result.output);
    const processes = Object.entries(found)
      .filter(([name]) => /^PROC_\d+$/.test(name))
      .map(([name, value]) => ({ pid: Number(name.slice(5)), comm: value.split('|')[0]!, cmdline: value.slice(value.indexOf('|') + 1) }));
    const count = Number(marker(result.output, 'PROC_COUNT'));
    // The sandbox's init and bridge, the CLI, the probe's shell and its subshells: a handful, far fewer than the host runs.
    expect(count).toBeGreaterThanOrEqual(4);
    expect(count, result.output).toBeLessThanOrEqual(20);
    expect(processes.map((entry) => entry.comm)).toContain('claude');
    // pid 1 is the sandbox's own init: bwrap on the local backend, tini in a container.
    expect(processes.find((entry) => entry.pid === 1)?.comm, result.output).toBe(testConfiguration().sandbox === 'local' ? 'bwrap' : 'tini');
    const hostCount = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).length;
    expect(hostCount).toBeGreaterThan(count);
    for (const entry of processes) {
      expect(entry.comm, result.output).not.toMatch(/^(node|vitest|npm|tsx|systemd|init)$/);
      expect(entry.cmdline, result.output).not.toContain('vitest');
      expect(entry.cmdline, result.output).not.toContain(process.argv.join(' '));
    }
    expect(found.HOST_PID, result.output).toBe('absent');
    expect(found.KILL_HOST_PID, result.output).toBe('1');
  });

  it('the agent runs as a non-root user on a read-only system with a writable workspace', async () => {
    const result = await prober.run(
      alice,
      aliceOther,
      [
        'echo "AGENT_UID=$(id -u)"',
        'echo "AGENT_GID=$(id -g)"',
        `echo "CAP_EFFECTIVE=$(awk '/^CapEff:/ {print $2}' /proc/self/status)"`,
        // prctl(PR_GET_NO_NEW_PRIVS): gVisor's /proc/self/status has no NoNewPrivs line.
        `python3 -c 'import ctypes; print("NO_NEW_PRIVS=%d" % ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))'`,
        'touch /usr/bin/agentyard-probe; echo "USR_WRITE=$?"',
        'touch /etc/agentyard-probe; echo "ETC_WRITE=$?"',
        'touch /agentyard-probe; echo "ROOT_WRITE=$?"',
        'echo written > /workspace/probe-write.txt; echo "WORKSPACE_WRITE=$?"',
        'echo "WORKSPACE_READ=$(cat /workspace/probe-write.txt)"',
      ].join('\n'),
    );

    const found = markers(result.output);
    expect(Number(marker(result.output, 'AGENT_UID'))).toBeGreaterThan(0);
    expect(Number(found.AGENT_GID)).toBeGreaterThan(0);
    expect(found.CAP_EFFECTIVE, result.output).toBe('0000000000000000');
    expect(found.NO_NEW_PRIVS, result.output).toBe('1');
    expect(found.USR_WRITE, result.output).toMatch(/^[1-9]\d*$/);
    expect(found.ETC_WRITE, result.output).toMatch(/^[1-9]\d*$/);
    expect(found.ROOT_WRITE, result.output).toMatch(/^[1-9]\d*$/);
    expect(found.WORKSPACE_WRITE, result.output).toBe('0');
    expect(found.WORKSPACE_READ, result.output).toBe('written');
    expect(existsSync('/usr/bin/agentyard-probe')).toBe(false);
    // The file landed in the conversation's workspace on the host, owned by the agent's uid.
    const written = statSync(path.join(test.workspaceDir(aliceOther), 'probe-write.txt'));
    expect(written.uid).toBe(Number(found.AGENT_UID));
  });

  it('another user gets 404 on every route of a conversation, exactly as for one that does not exist', async () => {
    const id = canaryConversation;
    const missing = 'conv_doesnotexist0000';
    // Give the conversation a turn and a workspace file to lose (also when this test runs alone).
    const kept = await prober.run(alice, id, 'echo kept > kept.txt; echo "KEPT=$?"');
    expect(marker(kept.output, 'KEPT')).toBe('0');
    const before = await alice.request('GET', `/api/conversations/${id}`);
    expect(before.status).toBe(200);
    const eventsBefore = await test.platform.store.listEvents(id);

    const octets = { 'content-type': 'application/octet-stream' };
    const attempts: Array<[string, string, unknown?, Record<string, string>?]> = [
      ['GET', ''],
      ['PATCH', '', { title: 'taken over' }],
      ['DELETE', ''],
      ['POST', '/messages', { text: 'SCN_TOOLS BASH<<echo owned > owned.txt>>' }],
      ['GET', '/events'],
      ['POST', '/interrupt'],
      ['GET', '/egress'],
      ['GET', '/files?path='],
      ['GET', '/files/content?path=kept.txt'],
      ['GET', '/files/content?path=kept.txt&download=1'],
      ['PUT', '/files/content?path=owned.txt', 'owned', octets],
      ['GET', '/files/archive'],
    ];
    // Every route of a conversation in the spec is tried (the terminal, a WebSocket, has its own test).
    const spec = (await alice.request('GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const specRoutes = Object.entries(spec.paths)
      .filter(([route]) => route.startsWith('/api/conversations/{id}') && !route.endsWith('/terminal'))
      .flatMap(([route, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${route.slice('/api/conversations/{id}'.length)}`));
    const tried = new Set(attempts.map(([method, suffix]) => `${method} ${suffix.split('?')[0]}`));
    expect(specRoutes.filter((route) => !tried.has(route))).toEqual([]);
    // Each read route exists and answers its owner, so a 404 below means refusal, not a wrong address.
    for (const [method, suffix] of attempts) {
      if (method !== 'GET' || suffix === '/events') continue;
      expect((await alice.request(method, `/api/conversations/${id}${suffix}`)).status, suffix).toBe(200);
    }
    for (const [method, suffix, body, headers] of attempts) {
      const response = await bob.request(method, `/api/conversations/${id}${suffix}`, body, headers);
      const control = await bob.request(method, `/api/conversations/${missing}${suffix}`, body, headers);
      expect(response.status, `${method} ${suffix}`).toBe(404);
      expect(response.body.error.code, `${method} ${suffix}`).toBe('NOT_FOUND');
      // No oracle: the answer for someone else's conversation is the answer for no conversation.
      expect(response.body.error.message.replaceAll(id, missing), `${method} ${suffix}`).toBe(control.body.error.message);
      expect(control.status).toBe(404);
    }

    const list = await bob.request('GET', '/api/conversations');
    expect(list.status).toBe(200);
    expect(list.body.conversations.map((conversation: { id: string }) => conversation.id)).toEqual([bobConversation]);
    const aliceList = await alice.request('GET', '/api/conversations');
    expect(aliceList.body.conversations.map((conversation: { id: string }) => conversation.id).sort()).toEqual([canaryConversation, aliceOther].sort());

    // Alice's conversation is exactly as it was: same title, turns and messages, no new events, workspace intact.
    const after = await alice.request('GET', `/api/conversations/${id}`);
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before.body);
    expect(await test.platform.store.listEvents(id)).toEqual(eventsBefore);
    expect(readFileSync(path.join(test.workspaceDir(id), 'kept.txt'), 'utf8')).toBe('kept\n');
    expect(existsSync(path.join(test.workspaceDir(id), 'owned.txt'))).toBe(false);
  });

  it('X-User-Id grants nothing: it neither authenticates nor changes who is signed in', async () => {
    const aliceId: string = (await alice.request('GET', '/api/auth/me')).body.user.id;
    const bobId: string = (await bob.request('GET', '/api/auth/me')).body.user.id;
    expect(aliceId).not.toBe(bobId);
    const spoof = { 'x-user-id': aliceId };

    for (const [method, route] of [
      ['GET', '/api/auth/me'],
      ['GET', '/api/conversations'],
      ['GET', `/api/conversations/${canaryConversation}`],
      ['POST', `/api/conversations/${canaryConversation}/messages`],
    ] as const) {
      const response = await test.api.request(method, route, method === 'POST' ? { text: 'hi' } : undefined, spoof);
      expect(response.status, `${method} ${route}`).toBe(401);
      expect(response.body.error.code).toBe('UNAUTHORIZED');
    }

    const me = await bob.request('GET', '/api/auth/me', undefined, spoof);
    expect(me.status).toBe(200);
    expect(me.body.user).toMatchObject({ id: bobId, email: 'bob@example.com' });
    const conversation = await bob.request('GET', `/api/conversations/${canaryConversation}`, undefined, spoof);
    expect(conversation.status).toBe(404);
    const list = await bob.request('GET', '/api/conversations', undefined, spoof);
    expect(list.body.conversations.map((entry: { id: string }) => entry.id)).toEqual([bobConversation]);
    const rename = await bob.request('PATCH', `/api/conversations/${canaryConversation}`, { title: 'spoofed' }, spoof);
    expect(rename.status).toBe(404);
    expect((await alice.request('GET', `/api/conversations/${canaryConversation}`)).body.title).toBe('canary');
  });
});
