import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

describe('workspace files API', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let conversationId: string;

  beforeAll(async () => {
    test = await startTestPlatform();
    alice = await test.api.registerWithToken('alice@example.com');
    conversationId = (await alice.request('POST', '/api/conversations', {})).body.id;
  });
  afterAll(() => test?.close());

  it('lists an unused workspace as empty', async () => {
    const listed = await alice.request('GET', `/api/conversations/${conversationId}/files`);
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({ path: '', entries: [], nextCursor: null });
  });

  it('lists and reads what the agent wrote', async () => {
    const sent = await alice.request('POST', `/api/conversations/${conversationId}/messages`, { text: 'SCN_TOOLS BASH<<mkdir -p src && echo hi > hello.txt && echo code > src/main.ts>>' });
    await alice.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId) });

    const root = await alice.request('GET', `/api/conversations/${conversationId}/files`);
    expect(root.body.entries.map((entry: { name: string; type: string }) => `${entry.type}:${entry.name}`)).toEqual([
      'directory:src',
      'file:hello.txt',
      'file:second.txt',
    ]);
    expect(root.body.entries[1]).toMatchObject({ size: 3, modifiedAt: expect.any(String) });
    const nested = await alice.request('GET', `/api/conversations/${conversationId}/files?path=src`);
    expect(nested.body.entries.map((entry: { name: string }) => entry.name)).toEqual(['main.ts']);

    const content = await fetch(`${test.platform.url}/api/conversations/${conversationId}/files/content?path=src/main.ts&download=1`, { headers: alice.authHeaders });
    expect(content.status).toBe(200);
    expect(content.headers.get('content-type')).toBe('application/octet-stream');
    expect(content.headers.get('content-disposition')).toContain('filename="main.ts"');
    expect(await content.text()).toBe('code\n');
  });

  it('confines every path to the workspace', async () => {
    const workspace = test.workspaceDir(conversationId);
    symlinkSync('/etc/passwd', path.join(workspace, 'passwd-link'));
    symlinkSync('/etc', path.join(workspace, 'etc-link'));
    mkdirSync(path.join(workspace, 'inner'), { recursive: true });
    writeFileSync(path.join(workspace, 'inner', 'ok.txt'), 'inside');
    symlinkSync('inner/ok.txt', path.join(workspace, 'good-link'));

    const attempts = [
      ['content', '../../../../etc/passwd'],
      ['content', '/etc/passwd'],
      ['content', 'passwd-link'],
      ['content', 'etc-link/passwd'],
      ['content', 'a\u0000b'],
      ['content', `${'x'.repeat(300)}.txt`],
      ['content', 'src'],
      ['content', 'missing.txt'],
      ['list', '..'],
      ['list', 'etc-link'],
      ['list', '/'],
      ['list', 'hello.txt'],
    ] as const;
    for (const [kind, filePath] of attempts) {
      const route = kind === 'content' ? 'files/content' : 'files';
      const response = await alice.request('GET', `/api/conversations/${conversationId}/${route}?path=${encodeURIComponent(filePath)}`);
      expect([400, 404], `${kind} ${JSON.stringify(filePath)} answered ${response.status}`).toContain(response.status);
      expect(JSON.stringify(response.body)).not.toContain('root:x:0:0');
      expect(response.body.error.code).toMatch(/BAD_REQUEST|NOT_FOUND/);
    }
    const good = await alice.request('GET', `/api/conversations/${conversationId}/files/content?path=good-link`);
    expect(good.body).toBe('inside');
    expect((await test.api.request('GET', '/healthz')).status).toBe(200);
  });

  it('refuses files over the size limit', async () => {
    writeFileSync(path.join(test.workspaceDir(conversationId), 'huge.bin'), Buffer.alloc(17 * 1024 * 1024));
    const response = await alice.request('GET', `/api/conversations/${conversationId}/files/content?path=huge.bin`);
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers 404 to another user', async () => {
    const bob = await test.api.registerWithToken('bob@example.com');
    for (const route of ['files', 'files?path=src', 'files/content?path=hello.txt']) {
      const response = await bob.request('GET', `/api/conversations/${conversationId}/${route}`);
      expect(response.status).toBe(404);
      expect(response.body.error.message).toBe('conversation not found');
    }
  });
});
