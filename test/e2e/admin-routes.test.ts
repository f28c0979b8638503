import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { testConfiguration } from '../support/test-configuration.ts';

const configuration = testConfiguration();

/** Bodies that would change something if a route accepted them from a non-administrator, by route; others get `{}`. */
const harmfulBodies: Record<string, unknown> = {
  'PATCH /api/admin/users/{id}': { role: 'admin' },
  'POST /api/admin/invites': { email: 'mallory@example.com' },
  'PUT /api/admin/agent-limits': { memoryMb: 65536, cpus: 64, turnTimeoutSeconds: 86400 },
  'PUT /api/admin/agents/{id}/egress': { egressDomains: ['exfiltrate.example.com'] },
  'PUT /api/admin/quotas/{userId}': { tokensPerDay: null, concurrentSandboxes: null },
};

describe(`administration routes (${configuration.name})`, () => {
  let test: TestPlatform;
  let admin: ApiClient;
  let adminId: string;
  let bob: ApiClient;
  let bobId: string;

  beforeAll(async () => {
    // Never paused, so that what activity says of a sandbox does not depend on how long this machine takes.
    test = await startTestPlatform({ env: { AGENTYARD_PAUSE_AFTER_SECONDS: '0' } });
    admin = await test.api.registerWithToken('root@example.com');
    adminId = (await admin.request('GET', '/api/auth/me')).body.user.id;
    bob = await test.api.registerWithToken('bob@example.com');
    bobId = (await bob.request('GET', '/api/auth/me')).body.user.id;
  });
  afterAll(() => test?.close());

  /** Every `/api/admin/...` operation the server describes, with its path parameters filled in. */
  async function adminOperations(): Promise<Array<{ name: string; method: string; url: string }>> {
    const spec = await test.api.request('GET', '/api/openapi.json');
    expect(spec.status).toBe(200);
    const operations: Array<{ name: string; method: string; url: string }> = [];
    for (const [route, methods] of Object.entries(spec.body.paths as Record<string, Record<string, unknown>>)) {
      if (!route.startsWith('/api/admin/')) continue;
      for (const method of Object.keys(methods).filter((name) => ['get', 'post', 'put', 'patch', 'delete'].includes(name))) {
        // Parameters name Bob (users, quotas) or the built-in agent.
        const url = route.replace(/\{(\w+)\}/g, () => (route.includes('/agents/') ? 'agt_default' : bobId));
        operations.push({ name: `${method.toUpperCase()} ${route}`, method: method.toUpperCase(), url });
      }
    }
    return operations;
  }

  /** What an administrator sees through every admin GET route: must not change when the refused calls are made. */
  async function adminView(operations: Array<{ method: string; url: string }>): Promise<Record<string, unknown>> {
    const view: Record<string, unknown> = {};
    for (const operation of operations.filter((candidate) => candidate.method === 'GET')) {
      const response = await admin.request('GET', operation.url);
      view[operation.url] = { status: response.status, body: response.body };
    }
    view['GET /api/agents/agt_default'] = (await admin.request('GET', '/api/agents/agt_default')).body;
    return view;
  }

  it('refuses every admin route to a non-administrator (403) and to no credential (401), and nothing changes', async () => {
    // State that a refused DELETE or PUT would change.
    expect((await admin.request('PUT', `/api/admin/quotas/${bobId}`, { tokensPerDay: 1000 })).status).toBe(200);
    expect((await admin.request('PUT', '/api/admin/agent-limits', { memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 600 })).status).toBe(200);
    const operations = await adminOperations();
    // The routes the README lists, so that a spec that lost them cannot pass for one with nothing to check.
    expect(operations.map((operation) => operation.name)).toEqual(
      expect.arrayContaining(['GET /api/admin/users', 'PATCH /api/admin/users/{id}', 'POST /api/admin/invites', 'GET /api/admin/activity', 'GET /api/admin/usage', 'GET /api/admin/quotas']),
    );
    const before = await adminView(operations);
    const anonymous = new ApiClient(test.platform.url);
    for (const operation of operations) {
      const takesBody = operation.method !== 'GET' && operation.method !== 'DELETE';
      // A body that would do harm, and one the route's schema refuses: who asks is checked first, whatever the body.
      for (const body of takesBody ? [harmfulBodies[operation.name] ?? {}, { unexpected: ['field'] }] : [undefined]) {
        const refused = await bob.request(operation.method, operation.url, body);
        expect({ operation: operation.name, body, status: refused.status, error: refused.body?.error }).toEqual({
          operation: operation.name,
          body,
          status: 403,
          error: { code: 'FORBIDDEN', message: 'administrators only', requestId: expect.any(String) },
        });
        const unauthenticated = await anonymous.request(operation.method, operation.url, body);
        expect({ operation: operation.name, body, status: unauthenticated.status, code: unauthenticated.body?.error?.code }).toEqual({
          operation: operation.name,
          body,
          status: 401,
          code: 'UNAUTHORIZED',
        });
      }
    }
    expect(await adminView(operations)).toEqual(before);
    expect((await bob.request('GET', '/api/auth/me')).body.user.role).toBe('user');
  });

  it('GET /api/admin/activity lists the conversations with a live sandbox or a running turn, with owner and title', async () => {
    const start = async (client: ApiClient, title: string, text: string) => {
      const conversation = (await client.request('POST', '/api/conversations', { title })).body.id as string;
      const sent = await client.request('POST', `/api/conversations/${conversation}/messages`, { text });
      expect(sent.status).toBe(202);
      return { conversation, turnId: sent.body.turnId as string };
    };
    const activity = async () => {
      const response = await admin.request('GET', '/api/admin/activity');
      expect(response.status).toBe(200);
      return response.body.conversations as Array<Record<string, unknown>>;
    };
    const adminWork = await start(admin, 'admin work', 'hello');
    await admin.readEvents(adminWork.conversation, { until: untilTurnEnded(adminWork.turnId), timeoutMs: 90_000 });
    const idle = (await bob.request('POST', '/api/conversations', { title: 'never ran' })).body.id as string;
    // A turn that streams for a few seconds: busy while it runs.
    const bobWork = await start(bob, 'bob work', 'SCN_SLOW please');
    const entry = (conversationId: string, userId: string, userEmail: string, title: string, busy: boolean) => ({
      conversationId,
      busy,
      live: true,
      paused: false,
      title,
      agentId: 'agt_default',
      userId,
      userEmail,
    });
    await expect
      .poll(async () => (await activity()).find((candidate) => candidate.conversationId === bobWork.conversation)?.busy, { timeout: 60_000, interval: 200 })
      .toBe(true);
    await bob.readEvents(bobWork.conversation, { until: untilTurnEnded(bobWork.turnId), timeoutMs: 90_000 });
    const settled = [entry(adminWork.conversation, adminId, 'root@example.com', 'admin work', false), entry(bobWork.conversation, bobId, 'bob@example.com', 'bob work', false)];
    const sorted = (entries: Array<Record<string, unknown>>) => [...entries].sort((a, b) => String(a.conversationId).localeCompare(String(b.conversationId)));
    await expect.poll(async () => sorted(await activity()), { timeout: 30_000, interval: 200 }).toEqual(sorted(settled));
    expect((await activity()).some((candidate) => candidate.conversationId === idle)).toBe(false);

    // A deleted conversation's sandbox is gone, and so is its entry.
    expect((await admin.request('DELETE', `/api/conversations/${adminWork.conversation}`)).status).toBe(204);
    expect(await activity()).toEqual([entry(bobWork.conversation, bobId, 'bob@example.com', 'bob work', false)]);

    const refused = await bob.request('GET', '/api/admin/activity');
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'FORBIDDEN', message: 'administrators only' });
    expect((await new ApiClient(test.platform.url).request('GET', '/api/admin/activity')).status).toBe(401);
  });
});
