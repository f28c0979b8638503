import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  runClaude,
  hang,
  startScriptedModel,
  text,
  type ModelUsage,
  type ScriptedModel,
} from '../../test/support/scripted-model.ts';
import { createGateway, gatewayClientEnv, type Gateway, type GatewayOptions, type GatewayUsage, type ModelCredential } from './gateway.ts';

const platformKey = 'sk-ant-platform-secret';

interface SocketResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Milliseconds from sending to the first body chunk, and to the end. */
  firstChunkMs: number | null;
  endMs: number;
}

function send(
  socketPath: string,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<SocketResponse> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        socketPath,
        method: options.method ?? 'POST',
        path: options.path ?? '/v1/messages?beta=true',
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
          ...options.headers,
        },
      },
      (response) => {
        let body = '';
        let firstChunkMs: number | null = null;
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          firstChunkMs ??= Date.now() - started;
          body += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body, firstChunkMs, endMs: Date.now() - started }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

const messagesBody = (prompt: string, stream = true): unknown => ({
  model: 'claude-test-1',
  max_tokens: 100,
  stream,
  messages: [{ role: 'user', content: prompt }],
});

let upstream: ScriptedModel;
let socketDir: string;
let gateway: Gateway;
let usageRecords: GatewayUsage[];

function startGateway(overrides: Partial<GatewayOptions> = {}): Gateway {
  gateway = createGateway({
    upstreamUrl: upstream.url,
    credential: { kind: 'api-key', value: platformKey },
    socketDir,
    onUsage: (record) => {
      usageRecords.push(record);
    },
    ...overrides,
  });
  return gateway;
}

const grant = (sandboxId: string) => ({ sandboxId, userId: `user_${sandboxId}`, conversationId: `conv_${sandboxId}`, agentId: `agent_${sandboxId}` });

beforeAll(async () => {
  upstream = await startScriptedModel();
});

afterAll(async () => {
  await upstream.close();
});

beforeEach(async () => {
  upstream.setScript(null);
  upstream.requests.length = 0;
  usageRecords = [];
  socketDir = await mkdtemp(join(tmpdir(), 'gw-'));
});

afterEach(async () => {
  await gateway.closeAll();
  await rm(socketDir, { recursive: true, force: true });
});

describe('Gateway', () => {
  it('forwards with the platform key and never passes the sandbox token upstream', async () => {
    const { token, socketPath } = await startGateway().open(grant('sbx1'));

    const response = await send(socketPath, {
      headers: { 'x-api-key': token, 'anthropic-version': '2023-06-01', 'x-claude-code-session-id': 'session-1' },
      body: messagesBody('hi'),
    });

    expect(response.status).toBe(200);
    expect(response.body).toContain('Hello from the scripted model');
    const forwarded = upstream.requests.at(-1)!;
    expect(forwarded.path).toBe('/v1/messages?beta=true');
    expect(forwarded.headers['x-api-key']).toBe(platformKey);
    expect(forwarded.headers['authorization']).toBeUndefined();
    expect(forwarded.headers['anthropic-version']).toBe('2023-06-01');
    expect(forwarded.headers['x-claude-code-session-id']).toBe('session-1');
    expect(JSON.stringify(forwarded.headers)).not.toContain(token);
    expect(forwarded.body).toEqual(messagesBody('hi'));
  });

  it('accepts the token as a Bearer authorization too', async () => {
    const { token, socketPath } = await startGateway().open(grant('sbx1'));

    const response = await send(socketPath, { headers: { authorization: `Bearer ${token}` }, body: messagesBody('hi') });

    expect(response.status).toBe(200);
    expect(upstream.requests.at(-1)?.headers['authorization']).toBeUndefined();
    expect(upstream.requests.at(-1)?.headers['x-api-key']).toBe(platformKey);
  });

  it('answers 401 in the API error shape for a missing or wrong token, without calling upstream', async () => {
    const { socketPath } = await startGateway().open(grant('sbx1'));

    const missing = await send(socketPath, { body: messagesBody('hi') });
    const wrong = await send(socketPath, { headers: { 'x-api-key': 'sbx_not-a-real-token' }, body: messagesBody('hi') });

    for (const response of [missing, wrong]) {
      expect(response.status).toBe(401);
      expect(JSON.parse(response.body)).toEqual({
        type: 'error',
        error: { type: 'authentication_error', message: 'invalid sandbox token' },
      });
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it('refuses a valid token presented on another sandbox socket', async () => {
    startGateway();
    const first = await gateway.open(grant('sbx1'));
    const second = await gateway.open(grant('sbx2'));

    const response = await send(first.socketPath, { headers: { 'x-api-key': second.token }, body: messagesBody('hi') });

    expect(response.status).toBe(401);
    expect(upstream.requests).toHaveLength(0);
  });

  it('stops honouring a closed token and removes its socket', async () => {
    startGateway();
    const first = await gateway.open(grant('sbx1'));
    const second = await gateway.open(grant('sbx2'));
    expect(existsSync(first.socketPath)).toBe(true);

    await gateway.close(first.token);

    expect(existsSync(first.socketPath)).toBe(false);
    await expect(send(first.socketPath, { headers: { 'x-api-key': first.token }, body: messagesBody('hi') })).rejects.toThrow(/ENOENT|ECONNREFUSED/);
    const response = await send(second.socketPath, { headers: { 'x-api-key': first.token }, body: messagesBody('hi') });
    expect(response.status).toBe(401);
    await gateway.close(first.token);
  });

  it('makes the socket reachable by an unprivileged uid', async () => {
    const { socketPath } = await startGateway().open(grant('sbx1'));

    expect((await stat(socketPath)).mode & 0o777).toBe(0o666);
    expect((await stat(socketDir)).mode & 0o777).toBe(0o755);
  });

  it('answers the CLI preconnect locally without a token', async () => {
    const { socketPath } = await startGateway().open(grant('sbx1'));

    const response = await send(socketPath, { method: 'HEAD', path: '/' });

    expect(response.status).toBe(200);
    expect(upstream.requests).toHaveLength(0);
  });

  it('only forwards the Messages API routes', async () => {
    const { token, socketPath } = await startGateway().open(grant('sbx1'));

    const batches = await send(socketPath, { path: '/v1/messages/batches', headers: { 'x-api-key': token }, body: {} });
    const counted = await send(socketPath, { path: '/v1/messages/count_tokens', headers: { 'x-api-key': token }, body: messagesBody('hi') });

    expect(batches.status).toBe(404);
    expect(JSON.parse(batches.body)).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    expect(counted.status).toBe(200);
    expect(upstream.requests.map((request) => request.path)).toEqual(['/v1/messages/count_tokens']);
    expect(usageRecords).toEqual([]);
  });

  it('delivers SSE chunks before the upstream has finished', async () => {
    upstream.setScript(() => text(['a ', 'b ', 'c ', 'd ', 'e'], { delayMs: 300 }));
    const { token, socketPath } = await startGateway().open(grant('sbx1'));

    const response = await send(socketPath, { headers: { 'x-api-key': token }, body: messagesBody('slow') });

    expect(response.headers['content-type']).toContain('text/event-stream');
    expect(response.endMs).toBeGreaterThanOrEqual(1_150);
    expect(response.firstChunkMs).not.toBeNull();
    expect(response.firstChunkMs!).toBeLessThan(600);
    expect(response.body).toContain('"text":"e"');
  });

  it('reports exactly the usage upstream reported, for SSE and JSON, attributed to the current turn', async () => {
    const usage: ModelUsage = { input_tokens: 1234, output_tokens: 56, cache_creation_input_tokens: 78, cache_read_input_tokens: 910 };
    upstream.setScript(() => text(['one ', 'two'], { usage }));
    const { token, socketPath } = await startGateway().open(grant('sbx1'));

    gateway.setTurn(token, 'turn_1');
    await send(socketPath, { headers: { 'x-api-key': token }, body: messagesBody('streamed') });
    gateway.setTurn(token, null);
    await send(socketPath, { headers: { 'x-api-key': token }, body: messagesBody('whole', false) });

    const expected = { inputTokens: 1234, outputTokens: 56, cacheCreationInputTokens: 78, cacheReadInputTokens: 910 };
    expect(usageRecords).toEqual([
      { userId: 'user_sbx1', conversationId: 'conv_sbx1', turnId: 'turn_1', agentId: 'agent_sbx1', model: 'claude-test-1', usage: expected },
      { userId: 'user_sbx1', conversationId: 'conv_sbx1', turnId: null, agentId: 'agent_sbx1', model: 'claude-test-1', usage: expected },
    ]);
  });

  it('meters a stream the sandbox abandons midway with what had been reported', async () => {
    upstream.setScript(() => text(['a ', 'b ', 'c '], { delayMs: 5_000, usage: { input_tokens: 321, output_tokens: 9 } }));
    const { token, socketPath } = await startGateway().open(grant('sbx1'));

    await new Promise<void>((resolve, reject) => {
      const request = httpRequest(
        { socketPath, method: 'POST', path: '/v1/messages', headers: { 'x-api-key': token, 'content-type': 'application/json' } },
        (response) => {
          response.once('data', () => {
            request.destroy();
            resolve();
          });
        },
      );
      request.on('error', () => undefined);
      request.end(JSON.stringify(messagesBody('abandon')));
      setTimeout(() => reject(new Error('no first chunk')), 2_000);
    });
    for (let attempt = 0; attempt < 40 && usageRecords.length === 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 25));

    expect(usageRecords.map((record) => record.usage)).toEqual([
      { inputTokens: 321, outputTokens: 1, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 },
    ]);
  });

  it('drops in-flight requests when the sandbox is closed', async () => {
    upstream.setScript(() => hang());
    const { token, socketPath } = await startGateway().open(grant('sbx1'));
    const outcome = send(socketPath, { headers: { 'x-api-key': token }, body: messagesBody('hang') }).then(
      () => 'answered',
      (error: Error) => error.message,
    );
    while (upstream.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));

    const started = Date.now();
    await gateway.close(token);

    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await outcome).toMatch(/socket hang up|ECONNRESET/);
  });

  it('reports no usage for an upstream error and relays the error as sent', async () => {
    const { token, socketPath } = await startGateway().open(grant('sbx1'));

    const response = await send(socketPath, { headers: { 'x-api-key': token }, body: messagesBody('ERR429') });

    expect(response.status).toBe(429);
    expect(response.headers['retry-after']).toBe('1');
    expect(JSON.parse(response.body)).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(usageRecords).toEqual([]);
  });

  it('sends an OAuth credential as Bearer with the oauth beta merged into the client betas', async () => {
    const { token, socketPath } = await startGateway({ credential: { kind: 'oauth-token', value: 'sk-ant-oat-secret' } }).open(
      grant('sbx1'),
    );

    await send(socketPath, {
      headers: { 'x-api-key': token, 'anthropic-beta': 'claude-code-20250219,context-1m-2025-08-07' },
      body: messagesBody('hi'),
    });

    const forwarded = upstream.requests.at(-1)!;
    expect(forwarded.headers['authorization']).toBe('Bearer sk-ant-oat-secret');
    expect(forwarded.headers['x-api-key']).toBeUndefined();
    expect(forwarded.headers['anthropic-beta']).toBe('claude-code-20250219,context-1m-2025-08-07,oauth-2025-04-20');
  });

  it('answers 503 while no credential is configured, and forwards once one is set', async () => {
    const { token, socketPath } = await startGateway({ credential: null }).open(grant('sbx1'));

    const refused = await send(socketPath, { headers: { 'x-api-key': token }, body: messagesBody('hi') });
    gateway.setCredential({ kind: 'api-key', value: platformKey });
    const accepted = await send(socketPath, { headers: { 'x-api-key': token }, body: messagesBody('hi') });

    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toEqual({ type: 'error', error: { type: 'api_error', message: 'no model credential configured' } });
    expect(accepted.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
  });

  it('answers 502 when the upstream cannot be reached', async () => {
    const { token, socketPath } = await startGateway({ upstreamUrl: 'http://127.0.0.1:1' }).open(grant('sbx1'));

    const response = await send(socketPath, { headers: { 'x-api-key': token }, body: messagesBody('hi') });

    expect(response.status).toBe(502);
    expect(JSON.parse(response.body)).toMatchObject({ type: 'error', error: { type: 'api_error' } });
  });

  it('refuses a request body over the limit', async () => {
    const { token, socketPath } = await startGateway({ maxBodyBytes: 1_000 }).open(grant('sbx1'));

    const response = await send(socketPath, { headers: { 'x-api-key': token }, body: messagesBody('x'.repeat(2_000)) });

    expect(response.status).toBe(413);
    expect(upstream.requests).toHaveLength(0);
  });

  it("uses a user's own credential for that user's requests and the platform key for others, asking again for each request", async () => {
    const own = new Map<string, ModelCredential | null>([['user_sbx1', { kind: 'api-key', value: 'sk-ant-users-own-1' }]]);
    startGateway({ credentialFor: (userId) => own.get(userId) ?? null });
    const first = await gateway.open(grant('sbx1'));
    const second = await gateway.open(grant('sbx2'));

    await send(first.socketPath, { headers: { 'x-api-key': first.token }, body: messagesBody('mine') });
    await send(second.socketPath, { headers: { 'x-api-key': second.token }, body: messagesBody('theirs') });
    own.set('user_sbx1', { kind: 'oauth-token', value: 'sk-ant-oat-rotated' });
    await send(first.socketPath, { headers: { 'x-api-key': first.token }, body: messagesBody('rotated') });
    own.delete('user_sbx1');
    await send(first.socketPath, { headers: { 'x-api-key': first.token }, body: messagesBody('removed') });

    expect(upstream.requests.map((request) => [request.headers['x-api-key'] ?? null, request.headers['authorization'] ?? null])).toEqual([
      ['sk-ant-users-own-1', null],
      [platformKey, null],
      [null, 'Bearer sk-ant-oat-rotated'],
      [platformKey, null],
    ]);
  });

  it('refuses a model request the admission check turns down, in the API error shape the CLI does not retry, and says so', async () => {
    const refused: Array<{ conversationId: string; turnId: string | null; code: string }> = [];
    startGateway({
      admit: (forGrant) => (forGrant.userId === 'user_sbx1' ? { code: 'QUOTA_EXCEEDED', message: 'the daily token quota (10 tokens) is used up' } : null),
      onRefused: ({ grant: refusedGrant, turnId, refusal }) => refused.push({ conversationId: refusedGrant.conversationId, turnId, code: refusal.code }),
    });
    const { token, socketPath } = await gateway.open(grant('sbx1'));
    const other = await gateway.open(grant('sbx2'));
    gateway.setTurn(token, 'turn_7');

    const response = await send(socketPath, { headers: { 'x-api-key': token }, body: messagesBody('over quota') });
    const counted = await send(socketPath, { path: '/v1/messages/count_tokens', headers: { 'x-api-key': token }, body: messagesBody('count') });
    const allowed = await send(other.socketPath, { headers: { 'x-api-key': other.token }, body: messagesBody('fine') });

    expect(response.status).toBe(400);
    expect(JSON.parse(response.body)).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: 'agentyard: the daily token quota (10 tokens) is used up' },
    });
    expect(refused).toEqual([{ conversationId: 'conv_sbx1', turnId: 'turn_7', code: 'QUOTA_EXCEEDED' }]);
    expect(counted.status).toBe(200);
    expect(allowed.status).toBe(200);
    expect(upstream.requests.map((request) => request.path)).toEqual(['/v1/messages/count_tokens', '/v1/messages?beta=true']);
  });

  it('answers 429 with Retry-After past the concurrent streams of one sandbox, without holding up other sandboxes', async () => {
    upstream.setScript((request) => (request.lastUserText === 'hang' ? hang() : text('ok')));
    startGateway({ maxStreamsPerSandbox: 2 });
    const busy = await gateway.open(grant('sbx1'));
    const other = await gateway.open(grant('sbx2'));
    const hanging = [1, 2].map(() => send(busy.socketPath, { headers: { 'x-api-key': busy.token }, body: messagesBody('hang') }).catch(() => null));
    while (upstream.requests.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));

    const third = await send(busy.socketPath, { headers: { 'x-api-key': busy.token }, body: messagesBody('one more') });
    const elsewhere = await send(other.socketPath, { headers: { 'x-api-key': other.token }, body: messagesBody('elsewhere') });

    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toBe('1');
    expect(JSON.parse(third.body)).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(elsewhere.status).toBe(200);
    await gateway.close(busy.token);
    await Promise.all(hanging);
  });

  it('cuts off a sandbox that stops reading its stream, metering what was sent, and keeps serving the others', async () => {
    const chunk = 'x'.repeat(1024);
    upstream.setScript((request) =>
      request.lastUserText === 'flood' ? text(Array.from({ length: 8000 }, () => chunk), { usage: { input_tokens: 77, output_tokens: 5 } }) : text('small'),
    );
    startGateway({ stallTimeoutMs: 300 });
    const stalled = await gateway.open(grant('sbx1'));
    const other = await gateway.open(grant('sbx2'));

    let client: ReturnType<typeof httpRequest> | null = null;
    await new Promise<void>((resolve, reject) => {
      client = httpRequest(
        { socketPath: stalled.socketPath, method: 'POST', path: '/v1/messages', headers: { 'x-api-key': stalled.token, 'content-type': 'application/json' } },
        (response) => {
          // Never read: the body piles up in the socket buffers until the gateway gives up on it.
          response.pause();
          response.on('error', () => undefined);
          resolve();
        },
      );
      client.on('error', () => undefined);
      client.end(JSON.stringify(messagesBody('flood')));
      setTimeout(() => reject(new Error('no response headers')), 5_000);
    });
    // The upstream stream ends (and is metered) only because the gateway dropped it: otherwise it would stay paused.
    for (let attempt = 0; attempt < 200 && usageRecords.length === 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 25));
    const elsewhere = await send(other.socketPath, { headers: { 'x-api-key': other.token }, body: messagesBody('still there') });

    expect(usageRecords[0]).toMatchObject({ userId: 'user_sbx1', usage: { inputTokens: 77 } });
    expect(elsewhere.status).toBe(200);
    (client as ReturnType<typeof httpRequest> | null)?.destroy();
  });

  it('rejects a sandbox id that is not a plain file name', async () => {
    await expect(startGateway().open(grant('../escape'))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});

describe('Gateway with the real Claude Code CLI', () => {
  let bridge: ChildProcess | null = null;

  afterEach(() => {
    bridge?.kill('SIGTERM');
    bridge = null;
  });

  async function freePort(): Promise<number> {
    const server = createNetServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }

  /** A TCP→unix bridge like the one a sandbox runs in front of its gateway socket. */
  async function bridgeTo(socketPath: string): Promise<string> {
    const port = await freePort();
    bridge = spawn('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${socketPath}`], { stdio: 'ignore' });
    for (let attempt = 0; attempt < 100; attempt++) {
      const ready = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (ready) return `http://127.0.0.1:${port}`;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('socat bridge did not start');
  }

  it('runs a tool-using turn end to end through the gateway, metered exactly', async () => {
    const { token, socketPath } = await startGateway().open(grant('sbx1'));
    gateway.setTurn(token, 'turn_e2e');
    const workspace = await mkdtemp(join(tmpdir(), 'gw-cli-'));
    try {
      const gatewayUrl = await bridgeTo(socketPath);
      const run = await runClaude({
        baseUrl: gatewayUrl,
        cwd: workspace,
        home: workspace,
        prompts: ['SCN_TOOLS WRITE<<note.txt|through the gateway>>'],
        env: gatewayClientEnv(gatewayUrl, token),
      });

      expect(run.results[0]).toMatchObject({ is_error: false, result: 'All done after 2 tool results.' });
      expect(await readFile(join(workspace, 'hello.txt'), 'utf8')).toBe('hi\n');
      expect(await readFile(join(workspace, 'note.txt'), 'utf8')).toBe('through the gateway');

      const forwarded = upstream.requests.filter((request) => request.method === 'POST');
      expect(forwarded).toHaveLength(3);
      for (const request of forwarded) {
        expect(request.headers['x-api-key']).toBe(platformKey);
        expect(JSON.stringify(request.headers)).not.toContain(token);
      }
      expect(usageRecords.map((record) => [record.turnId, record.usage])).toEqual(
        forwarded.map((request) => [
          'turn_e2e',
          {
            inputTokens: request.usage!.input_tokens,
            outputTokens: request.usage!.output_tokens,
            cacheCreationInputTokens: request.usage!.cache_creation_input_tokens,
            cacheReadInputTokens: request.usage!.cache_read_input_tokens,
          },
        ]),
      );
      const cliUsage = run.results[0]!.usage as { input_tokens: number; output_tokens: number };
      expect(usageRecords.reduce((sum, record) => sum + record.usage.inputTokens, 0)).toBe(cliUsage.input_tokens);
      expect(usageRecords.reduce((sum, record) => sum + record.usage.outputTokens, 0)).toBe(cliUsage.output_tokens);
    } finally {
      await rm(workspace, { recursive: true, force: true });
    }
  });

  it('works with the token given as ANTHROPIC_AUTH_TOKEN', async () => {
    const { token, socketPath } = await startGateway().open(grant('sbx1'));
    const workspace = await mkdtemp(join(tmpdir(), 'gw-cli-'));
    try {
      const run = await runClaude({
        baseUrl: await bridgeTo(socketPath),
        cwd: workspace,
        home: workspace,
        prompts: ['hello'],
        env: { ANTHROPIC_API_KEY: undefined, ANTHROPIC_AUTH_TOKEN: token },
      });

      expect(run.results[0]).toMatchObject({ is_error: false, result: 'Hello from the scripted model. You said: hello' });
      expect(upstream.requests.find((request) => request.method === 'POST')?.headers['x-api-key']).toBe(platformKey);
    } finally {
      await rm(workspace, { recursive: true, force: true });
    }
  });
});
