import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { text, toolUse } from '../support/scripted-model.ts';

describe('editing a workspace file with If-Match', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let conversationId: string;

  beforeAll(async () => {
    test = await startTestPlatform();
    alice = await test.api.registerWithToken('alice@example.com');
    conversationId = (await alice.request('POST', '/api/conversations', {})).body.id;
  });
  afterAll(() => test?.close());

  const url = (file: string) => `${test.platform.url}/api/conversations/${conversationId}/files/content?path=${encodeURIComponent(file)}`;
  const read = (file: string) => fetch(url(file), { headers: alice.authHeaders });
  const write = (file: string, body: string, ifMatch?: string) =>
    fetch(url(file), {
      method: 'PUT',
      headers: { ...alice.authHeaders, 'content-type': 'application/octet-stream', ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) },
      body,
    });
  const onDisk = (file: string) => readFileSync(path.join(test.workspaceDir(conversationId), file), 'utf8');

  it('saves over the version read, and answers 412 FILE_CHANGED when the agent changed the file meanwhile', async () => {
    expect((await write('plan.md', '# plan\n')).status).toBe(201);
    const first = await read('plan.md');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(await first.text()).toBe('# plan\n');

    // The user's edit, made against what they read: saved, and the answer names the new version.
    const saved = await write('plan.md', '# plan\n- step one\n', etag);
    expect(saved.status).toBe(201);
    const savedEtag = saved.headers.get('etag')!;
    expect(savedEtag).not.toBe(etag);
    expect((await read('plan.md')).headers.get('etag')).toBe(savedEtag);

    // The agent rewrites the file in its sandbox.
    test.model.setScript((request) =>
      request.toolResults === 0 ? toolUse('Bash', { command: 'echo "# the agent\'s plan" > plan.md', description: 'rewrite' }) : text('Rewrote the plan.'),
    );
    const sent = await alice.request('POST', `/api/conversations/${conversationId}/messages`, { text: 'rewrite the plan' });
    await alice.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId), timeoutMs: 90_000 });
    expect(onDisk('plan.md')).toBe("# the agent's plan\n");

    // Saving again against the version the user had: refused, and the agent's file is kept.
    const stale = await write('plan.md', '# plan\n- step one\n- step two\n', savedEtag);
    expect(stale.status).toBe(412);
    const body = (await stale.json()) as { error: { code: string; message: string; requestId: string } };
    expect(body.error).toMatchObject({ code: 'FILE_CHANGED', message: expect.stringContaining('changed since you read it'), requestId: expect.any(String) });
    expect(onDisk('plan.md')).toBe("# the agent's plan\n");

    // After reading the agent's version, the user may save over it.
    const fresh = (await read('plan.md')).headers.get('etag')!;
    expect((await write('plan.md', 'merged\n', fresh)).status).toBe(201);
    expect(onDisk('plan.md')).toBe('merged\n');
  }, 120_000);

  it('answers 412 for a file that is gone, ignores weak tags, and refuses an If-Match that names no tag', async () => {
    const gone = await write('never-written.md', 'x', '"c29tZSB2ZXJzaW9u"');
    expect(gone.status).toBe(412);
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('FILE_CHANGED');
    expect((await write('never-written.md', 'x', '*')).status).toBe(412);

    await write('notes.txt', 'one');
    const etag = (await read('notes.txt')).headers.get('etag')!;
    expect((await write('notes.txt', 'two', `W/${etag}`)).status).toBe(412);
    expect((await write('notes.txt', 'two', 'not-a-tag')).status).toBe(400);
    expect((await write('notes.txt', 'two', `"other", ${etag}`)).status).toBe(201);
    expect((await write('notes.txt', 'three', '*')).status).toBe(201);
    expect(onDisk('notes.txt')).toBe('three');
  });

  it('describes If-Match and 412 in the OpenAPI spec', async () => {
    const spec = (await test.api.request('GET', '/api/openapi.json')).body;
    const put = spec.paths['/api/conversations/{id}/files/content'].put;
    expect(put.parameters.some((parameter: { name: string; in: string }) => parameter.in === 'header' && parameter.name === 'if-match')).toBe(true);
    expect(put.responses).toHaveProperty('412');
  });
});
