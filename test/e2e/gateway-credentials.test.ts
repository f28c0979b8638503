import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiClient, type StreamedEvent, untilTurnEnded } from '../support/api-client.ts';
import { captureLog, type CapturedLog } from '../support/captured-log.ts';
import { platformSecret, startTestPlatform, type TestPlatform } from '../support/platform.ts';

const aliceKey = 'sk-ant-api03-ALICE-OWN-KEY-4f9c2d7e1b6a';
const aliceRotated = 'sk-ant-api03-ALICE-ROTATED-KEY-8e3b5a0c9d1f';
const aliceOauth = 'sk-ant-oat01-ALICE-OAUTH-TOKEN-2c7f4e9a6b0d';
const secrets = [aliceKey, aliceRotated, aliceOauth];

describe('bring your own key', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let bob: ApiClient;
  let captured: CapturedLog;
  /** Every API answer of the test, to check that no key is in any of them. */
  const answers: unknown[] = [];

  beforeAll(async () => {
    captured = captureLog();
    test = await startTestPlatform({
      env: { AGENTYARD_SECRET_KEY: randomBytes(32).toString('base64') },
      logger: captured.logger,
    });
    alice = await test.api.registerWithToken('alice@example.com');
    bob = await test.api.registerWithToken('bob@example.com');
  });
  afterAll(() => test?.close());

  const call = async (client: ApiClient, method: string, url: string, body?: unknown) => {
    const response = await client.request(method, url, body);
    answers.push(response.body);
    return response;
  };

  /** Runs a turn and returns the credential headers of the model requests it made, and its events. */
  async function turn(client: ApiClient, conversationId: string, text: string): Promise<{ credentials: string[]; events: StreamedEvent[] }> {
    const before = test.model.requests.length;
    const sent = await call(client, 'POST', `/api/conversations/${conversationId}/messages`, { text });
    expect(sent.status).toBe(202);
    const events = await client.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId) });
    answers.push(events);
    expect(events.at(-1)!.data.status, JSON.stringify(events.at(-1)!.data)).toBe('completed');
    const credentials = test.model.requests
      .slice(before)
      .filter((request) => request.path.startsWith('/v1/messages?'))
      .map((request) => request.headers['x-api-key'] ?? `${request.headers['authorization']} beta=${request.headers['anthropic-beta']?.includes('oauth-2025-04-20')}`);
    return { credentials, events };
  }

  it('sends the user’s own key upstream for their turns and the platform key for others, rotating without a restart', async () => {
    const stored = await call(alice, 'PUT', '/api/credentials/model', { kind: 'api-key', value: aliceKey });
    expect(stored.status).toBe(200);
    expect(stored.body).toEqual({ kind: 'api-key', createdAt: expect.any(String), updatedAt: expect.any(String) });
    expect((await call(alice, 'GET', '/api/credentials')).body).toEqual({ model: stored.body, canStore: true });
    expect((await call(bob, 'GET', '/api/credentials')).body).toEqual({ model: null, canStore: true });

    const { body: aliceConversation } = await call(alice, 'POST', '/api/conversations', {});
    const { body: bobConversation } = await call(bob, 'POST', '/api/conversations', {});
    const own = await turn(alice, aliceConversation.id, 'SCN_TOOLS BASH<<echo "ENV: $(env | tr \'\\n\' \' \')"; cat /proc/[0-9]*/environ 2>/dev/null | tr \'\\0\' \' \'; ls -a ~ /workspace>>');
    const platform = await turn(bob, bobConversation.id, 'hello');

    expect(own.credentials).toEqual([aliceKey, aliceKey, aliceKey]);
    expect(platform.credentials).toEqual([platformSecret]);
    // Nothing of it reached the sandbox: its environment (every process's) holds only the sandbox token.
    const output = own.events.find((event) => event.event === 'tool.ended')!.data.output as string;
    expect(output).toContain('ANTHROPIC_API_KEY=sbx_');
    for (const secret of [...secrets, platformSecret]) expect(output).not.toContain(secret);

    // Rotation: the very next request of the same live sandbox uses the new key.
    await call(alice, 'PUT', '/api/credentials/model', { kind: 'api-key', value: aliceRotated });
    expect((await turn(alice, aliceConversation.id, 'after rotation')).credentials).toEqual([aliceRotated]);
    await call(alice, 'PUT', '/api/credentials/model', { kind: 'oauth-token', value: aliceOauth });
    expect((await turn(alice, aliceConversation.id, 'with a subscription')).credentials).toEqual([`Bearer ${aliceOauth} beta=true`]);
    expect((await call(alice, 'DELETE', '/api/credentials/model')).status).toBe(204);
    expect((await turn(alice, aliceConversation.id, 'back to the platform')).credentials).toEqual([platformSecret]);
    expect((await call(alice, 'DELETE', '/api/credentials/model')).status).toBe(404);
  });

  it('never shows the key in an API answer or a log line, and stores it only encrypted', async () => {
    await call(alice, 'PUT', '/api/credentials/model', { kind: 'api-key', value: aliceKey });
    const { body: conversation } = await call(alice, 'POST', '/api/conversations', {});
    await turn(alice, conversation.id, 'one more');
    // A key too short is refused without being echoed.
    const refused = await call(alice, 'PUT', '/api/credentials/model', { kind: 'api-key', value: 'sk-ant' });
    expect(refused.status).toBe(400);
    for (const url of ['/api/credentials', `/api/conversations/${conversation.id}`, '/api/usage', '/api/agents', '/api/auth/me']) await call(alice, 'GET', url);
    await new Promise((resolve) => setTimeout(resolve, 200));

    const everything = JSON.stringify(answers);
    const log = captured.text();
    expect(log).toContain('user credential stored');
    for (const secret of secrets) {
      expect(everything).not.toContain(secret);
      expect(log).not.toContain(secret);
    }
    // Encrypted at rest: not in the database files, in any encoding we could think of.
    const files = (await readdir(test.dataDir)).filter((file) => file.startsWith('agentyard.sqlite'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const bytes = await readFile(path.join(test.dataDir, file));
      for (const secret of secrets) {
        expect(bytes.includes(Buffer.from(secret))).toBe(false);
        expect(bytes.includes(Buffer.from(Buffer.from(secret).toString('base64').slice(0, 24)))).toBe(false);
      }
    }
  });
});

describe('bring your own key without a secret key configured', () => {
  it('refuses to store a key rather than keep it in clear', async () => {
    const test = await startTestPlatform();
    try {
      const alice = await test.api.registerWithToken('alice@example.com');
      expect((await alice.request('GET', '/api/credentials')).body).toEqual({ model: null, canStore: false });
      const refused = await alice.request('PUT', '/api/credentials/model', { kind: 'api-key', value: aliceKey });
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toContain('AGENTYARD_SECRET_KEY');
    } finally {
      await test.close();
    }
  });
});
