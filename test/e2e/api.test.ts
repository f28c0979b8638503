import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { removeDataDir } from '../support/data-dir.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

describe('agents API', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let bob: ApiClient;
  beforeAll(async () => {
    test = await startTestPlatform();
    alice = await test.api.registerWithToken('alice@example.com');
    bob = await test.api.registerWithToken('bob@example.com');
  });
  afterAll(() => test?.close());

  const definition = {
    name: 'tester',
    description: 'runs the tests',
    instructions: 'Run npm test.',
    model: 'claude-sonnet-5',
    allowedTools: ['Bash(npm test:*)'],
    disallowedTools: ['WebFetch'],
    maxTurns: 10,
    limits: { memoryMb: 2048, cpus: 2, turnTimeoutSeconds: 300 },
  };

  it('creates, lists, reads, updates and deletes an agent', async () => {
    const created = await alice.request('POST', '/api/agents', definition);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ ...definition, builtin: false });

    const listed = await alice.request('GET', '/api/agents');
    expect(listed.body.agents.map((agent: { id: string }) => agent.id)).toEqual([created.body.id, 'agt_default']);
    expect(listed.body.agents[1]).toMatchObject({ builtin: true, ownerId: null });

    const updated = await alice.request('PATCH', `/api/agents/${created.body.id}`, { name: 'renamed', limits: { memoryMb: 512 } });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ name: 'renamed', limits: { memoryMb: 512, cpus: 2, turnTimeoutSeconds: 300 }, instructions: 'Run npm test.' });
    expect((await alice.request('GET', `/api/agents/${created.body.id}`)).body.name).toBe('renamed');

    expect((await alice.request('DELETE', `/api/agents/${created.body.id}`)).status).toBe(204);
    expect((await alice.request('GET', `/api/agents/${created.body.id}`)).status).toBe(404);
  });

  it('refuses a sandbox runtime the local backend cannot honour, and says why', async () => {
    expect((await alice.request('GET', '/api/status')).body.sandbox).toEqual({ backend: 'local', runtimes: [], defaultRuntime: null });
    const refused = await alice.request('POST', '/api/agents', { ...definition, sandboxRuntime: 'runsc' });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('needs the Docker sandbox backend') });
    const created = await alice.request('POST', '/api/agents', definition);
    expect(created.body.sandboxRuntime).toBe('default');
    const patched = await alice.request('PATCH', `/api/agents/${created.body.id}`, { sandboxRuntime: 'runc' });
    expect(patched.status).toBe(400);
    expect((await alice.request('GET', `/api/agents/${created.body.id}`)).body.sandboxRuntime).toBe('default');
    expect((await alice.request('POST', '/api/agents', { ...definition, sandboxRuntime: 'kata' })).status).toBe(400);
  });

  it('hides one user’s agent from another and protects built-in and in-use agents', async () => {
    const { body: agent } = await alice.request('POST', '/api/agents', definition);
    for (const [method, body] of [['GET', undefined], ['PATCH', { name: 'mine' }], ['DELETE', undefined]] as const) {
      const response = await bob.request(method, `/api/agents/${agent.id}`, body);
      expect(response.status).toBe(404);
    }
    expect((await bob.request('POST', '/api/conversations', { agentId: agent.id })).status).toBe(404);
    expect((await bob.request('GET', '/api/agents')).body.agents.map((item: { id: string }) => item.id)).toEqual(['agt_default']);

    expect((await alice.request('PATCH', '/api/agents/agt_default', { name: 'mine' })).status).toBe(403);
    expect((await alice.request('DELETE', '/api/agents/agt_default')).status).toBe(403);

    await alice.request('POST', '/api/conversations', { agentId: agent.id });
    const inUse = await alice.request('DELETE', `/api/agents/${agent.id}`);
    expect(inUse.status).toBe(409);
    expect(inUse.body.error.code).toBe('CONFLICT');
  });

  it('renames and deletes conversations, and deleting removes the workspace', async () => {
    const { body: conversation } = await alice.request('POST', '/api/conversations', { title: 'first' });
    const renamed = await alice.request('PATCH', `/api/conversations/${conversation.id}`, { title: 'second' });
    expect(renamed.body.title).toBe('second');
    const sent = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'SCN_TOOLS' });
    await alice.readEvents(conversation.id, { until: (events) => events.some((event) => event.event === 'turn.ended' && event.data.turnId === sent.body.turnId) });
    const { existsSync } = await import('node:fs');
    expect(existsSync(path.join(test.workspaceDir(conversation.id), 'hello.txt'))).toBe(true);

    expect((await alice.request('DELETE', `/api/conversations/${conversation.id}`)).status).toBe(204);
    expect((await alice.request('GET', `/api/conversations/${conversation.id}`)).status).toBe(404);
    expect(existsSync(path.join(test.dataDir, 'workspaces', conversation.id))).toBe(false);
    expect((await alice.request('GET', '/api/conversations')).body.conversations.map((item: { id: string }) => item.id)).not.toContain(conversation.id);
  });
});

describe('operations', () => {
  let test: TestPlatform;
  beforeAll(async () => {
    test = await startTestPlatform();
  });
  afterAll(() => test?.close());

  it('describes every route in the OpenAPI spec', async () => {
    const spec = await test.api.request('GET', '/api/openapi.json');
    expect(spec.status).toBe(200);
    expect(spec.body.openapi).toMatch(/^3\./);
    const documented = Object.entries(spec.body.paths as Record<string, Record<string, unknown>>).flatMap(([route, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${route}`),
    );
    // printRoutes draws a tree: each line adds a path segment to its parent's, one level per 4 columns.
    const registered: string[] = [];
    const prefixes: string[] = [];
    for (const line of test.platform.app.printRoutes({ commonPrefix: false }).split('\n')) {
      const match = /^([│ ├└─]*)(\S+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
      if (!match || !match[2]) continue;
      const depth = Math.round(match[1]!.length / 4);
      prefixes.length = depth;
      const route = `${prefixes[depth - 1] ?? ''}${match[2]}`;
      prefixes[depth] = route;
      for (const method of match[3]?.split(', ') ?? []) {
        if (method !== 'HEAD') registered.push(`${method} ${route.replace(/:(\w+)/g, '{$1}')}`);
      }
    }
    // Not API routes: the spec itself, and the web app's catch-all (its files and index.html for client-side routes).
    const notApi = ['GET /api/openapi.json', 'GET *', 'GET /*'];
    const undocumented = registered.filter((route) => !notApi.includes(route) && !documented.includes(route));
    expect(registered.length).toBeGreaterThan(20);
    expect(undocumented).toEqual([]);
    for (const fixed of [
      'POST /api/auth/register',
      'POST /api/auth/login',
      'POST /api/tokens',
      'POST /api/conversations',
      'GET /api/conversations',
      'GET /api/conversations/{id}',
      'POST /api/conversations/{id}/messages',
      'GET /api/conversations/{id}/events',
      'POST /api/conversations/{id}/interrupt',
      'POST /api/conversation',
      'GET /healthz',
      'GET /readyz',
    ]) {
      expect(documented).toContain(fixed);
    }
  });

  it('reports liveness and readiness of the store, the sandbox backend and the CLI binary', async () => {
    expect((await test.api.request('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await test.api.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    const names = ready.body.checks.map((check: { name: string }) => check.name);
    expect(names).toEqual(expect.arrayContaining(['store', 'claude-cli', 'bubblewrap']));
    // The CLI binary is checked once, though the local backend checks it for itself too.
    expect(names.filter((name: string) => /claude/.test(name))).toEqual(['claude-cli']);
    expect(ready.body.checks.every((check: { ok: boolean }) => check.ok)).toBe(true);
  });

  it('reports not ready when the CLI binary is missing', async () => {
    const broken = await startTestPlatform({ env: { AGENTYARD_CLAUDE_BINARY: '/nonexistent/claude' } });
    try {
      const ready = await broken.api.request('GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body.checks.find((check: { name: string }) => check.name === 'claude-cli')).toMatchObject({ ok: false });
    } finally {
      await broken.close();
    }
  });
});

describe('the command line', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-cli-'));
  });
  afterAll(() => removeDataDir(dataDir));

  const cli = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
      cwd: root,
      env: { PATH: process.env.PATH!, AGENTYARD_DATA_DIR: dataDir, ...env },
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );

  it('creates an admin who can then sign in', async () => {
    const created = await cli(['create-user', '--email', 'ops@example.com', '--password', 'long enough', '--admin']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/created admin ops@example.com/);
    const duplicate = await cli(['create-user', '--email', 'ops@example.com', '--password', 'long enough']);
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toMatch(/already exists/);

    const test = await startTestPlatform({ dataDir });
    try {
      const login = await test.api.request('POST', '/api/auth/login', { email: 'ops@example.com', password: 'long enough' });
      expect(login.status).toBe(200);
      expect(login.body.user.role).toBe('admin');
    } finally {
      await test.close();
    }
  });

  it('doctor checks the host and says how to fix what is missing', async () => {
    const healthy = await cli(['doctor'], { ANTHROPIC_API_KEY: 'sk-test' });
    expect(healthy.stdout).toMatch(/ok\s+bubblewrap/);
    expect(healthy.stdout).toMatch(/ok\s+claude-cli/);
    expect(healthy.stdout).toMatch(/ok\s+credentials/);
    expect(healthy.stdout).not.toContain('sk-test');
    expect(healthy.code).toBe(0);

    const missing = await cli(['doctor'], { AGENTYARD_CLAUDE_BINARY: '/nonexistent/claude' });
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/FAIL\s+claude-cli/);
    expect(missing.stdout).toMatch(/FAIL\s+credentials/);
    expect(missing.stdout).toMatch(/fix: set ANTHROPIC_API_KEY/);
  });

  it('refuses to start with a wrong setting and names it', async () => {
    const result = await cli(['serve'], { PORT: 'eighty' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/port: .*set PORT or --port/);
  });
});
