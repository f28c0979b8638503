import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

/** The entries of a zip and their contents, read by an independent implementation (Python's zipfile). */
function unzip(bytes: Buffer): Record<string, string> {
  const script = 'import json,sys,zipfile,io\nz=zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()))\nprint(json.dumps({i.filename: z.read(i).decode("utf-8","replace") for i in z.infolist()}))';
  return JSON.parse(execFileSync('python3', ['-c', script], { input: bytes, env: { PATH: '/usr/bin:/bin' } }).toString());
}

describe('workspace uploads and archives', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let conversationId: string;
  let outside: string;

  beforeAll(async () => {
    test = await startTestPlatform();
    alice = await test.api.registerWithToken('alice@example.com');
    conversationId = (await alice.request('POST', '/api/conversations', {})).body.id;
    outside = mkdtempSync(path.join(tmpdir(), 'agentyard-outside-'));
  });
  afterAll(async () => {
    await test?.close();
    rmSync(outside, { recursive: true, force: true });
  });

  const upload = (filePath: string, body: string | Buffer, headers: Record<string, string> = {}, client = alice): Promise<Response> =>
    fetch(`${test.platform.url}/api/conversations/${conversationId}/files/content?path=${encodeURIComponent(filePath)}`, {
      method: 'PUT',
      headers: { ...client.authHeaders, 'content-type': 'application/octet-stream', ...headers },
      body: typeof body === 'string' ? body : new Uint8Array(body),
    });
  const archive = (query = ''): Promise<Response> => fetch(`${test.platform.url}/api/conversations/${conversationId}/files/archive${query}`, { headers: alice.authHeaders });

  it('uploads into a conversation that never ran, creating directories', async () => {
    const response = await upload('docs/notes/readme.md', '# hello\n');
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ path: 'docs/notes/readme.md', size: 8 });
    expect(readFileSync(path.join(test.workspaceDir(conversationId), 'docs/notes/readme.md'), 'utf8')).toBe('# hello\n');
    const read = await alice.request('GET', `/api/conversations/${conversationId}/files/content?path=docs/notes/readme.md`);
    expect(read.body).toBe('# hello\n');
    // Replacing a file keeps only the new bytes.
    expect((await upload('docs/notes/readme.md', 'v2')).status).toBe(201);
    expect(readFileSync(path.join(test.workspaceDir(conversationId), 'docs/notes/readme.md'), 'utf8')).toBe('v2');
  });

  it('keeps odd but legal names intact', async () => {
    const names = ['with space.txt', 'ünïcödé-文件.txt', 'new\nline.txt', 'back\\slash.txt', 'C:drive.txt', '-dash.txt', `${'n'.repeat(250)}.txt`];
    for (const name of names) {
      const response = await upload(`odd/${name}`, `content of ${name}`);
      expect(response.status, name).toBe(201);
    }
    expect(readdirSync(path.join(test.workspaceDir(conversationId), 'odd')).sort()).toEqual([...names].sort());
  });

  it('never writes outside the workspace', async () => {
    const workspace = test.workspaceDir(conversationId);
    symlinkSync(outside, path.join(workspace, 'outside-dir'));
    writeFileSync(path.join(outside, 'target.txt'), 'original');
    symlinkSync(path.join(outside, 'target.txt'), path.join(workspace, 'outside-file'));
    const passwd = readFileSync('/etc/passwd', 'utf8');

    const attempts = ['../escape.txt', 'a/../../escape.txt', '/etc/passwd', '/tmp/escape.txt', 'outside-dir/new.txt', 'outside-file', 'a\u0000b', `${'x'.repeat(300)}.txt`, 'docs', ''];
    for (const attempt of attempts) {
      const response = await upload(attempt, 'pwned');
      expect([400, 404], `${JSON.stringify(attempt)} answered ${response.status}`).toContain(response.status);
      const body = (await response.json()) as { error: { code: string } };
      expect(body.error.code).toMatch(/BAD_REQUEST|NOT_FOUND/);
    }
    expect(readFileSync('/etc/passwd', 'utf8')).toBe(passwd);
    expect(readdirSync(outside)).toEqual(['target.txt']);
    expect(readFileSync(path.join(outside, 'target.txt'), 'utf8')).toBe('original');
    expect(readdirSync(path.dirname(workspace)).sort()).toEqual(['home', 'workspace']);
  });

  it('refuses files over the upload limit, and other content types', async () => {
    const status = (await alice.request('GET', '/api/status')).body;
    const tooLarge = Buffer.alloc(status.limits.maxUploadBytes + 1, 0x61);
    const response = await upload('big.bin', tooLarge);
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(readdirSync(test.workspaceDir(conversationId))).not.toContain('big.bin');

    const json = await upload('x.json', '{}', { 'content-type': 'application/json' });
    expect(json.status).toBe(400);
    expect((await test.api.request('GET', '/healthz')).status).toBe(200);
  });

  it('refuses another user’s workspace as not found', async () => {
    const bob = await test.api.registerWithToken('bob@example.com');
    expect((await upload('bob.txt', 'x', {}, bob)).status).toBe(404);
    const zip = await fetch(`${test.platform.url}/api/conversations/${conversationId}/files/archive`, { headers: bob.authHeaders });
    expect(zip.status).toBe(404);
  });

  it('downloads the workspace as a zip, without following symlinks', async () => {
    const workspace = test.workspaceDir(conversationId);
    symlinkSync('/etc/passwd', path.join(workspace, 'passwd-link'));
    const response = await archive();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/zip');
    expect(response.headers.get('content-disposition')).toContain('filename="workspace.zip"');
    const entries = unzip(Buffer.from(await response.arrayBuffer()));
    expect(entries['docs/notes/readme.md']).toBe('v2');
    expect(entries['odd/with space.txt']).toBe('content of with space.txt');
    expect(entries['odd/ünïcödé-文件.txt']).toBe('content of ünïcödé-文件.txt');
    // A backslash would be a separator to some extractors: it is replaced.
    expect(entries['odd/back_slash.txt']).toBe('content of back\\slash.txt');
    expect(entries['docs/']).toBe('');
    expect(JSON.stringify(entries)).not.toContain('root:x:0:0');
    expect(JSON.stringify(entries)).not.toContain('original');
    expect(entries['AGENTYARD-SKIPPED.txt']).toMatch(/passwd-link {2}\(a symlink: not followed\)/);
    expect(entries['AGENTYARD-SKIPPED.txt']).toMatch(/outside-dir/);
    expect(Number(response.headers.get('x-agentyard-skipped'))).toBe(3);
    for (const name of Object.keys(entries)) {
      expect(name.startsWith('/') || name.split('/').includes('..'), name).toBe(false);
    }
  });

  it('downloads one directory, and refuses paths that leave the workspace', async () => {
    const response = await archive('?path=docs/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toContain('filename="docs.zip"');
    expect(Object.keys(unzip(Buffer.from(await response.arrayBuffer())))).toEqual(['notes/', 'notes/readme.md']);
    for (const bad of ['..', '/', '/etc', 'outside-dir', 'passwd-link', 'docs/notes/readme.md', 'missing']) {
      const refused = await archive(`?path=${encodeURIComponent(bad)}`);
      expect([400, 404], `${bad} answered ${refused.status}`).toContain(refused.status);
    }
  });

  it('leaves out files too large to read whole, and refuses a workspace too large to archive', async () => {
    const workspace = test.workspaceDir(conversationId);
    mkdirSync(path.join(workspace, 'huge'));
    // Sparse files: their size is real to stat but costs no disk.
    truncateSync(createEmpty(path.join(workspace, 'huge', 'one.bin')), 17 * 1024 * 1024);
    const skipped = await archive('?path=huge');
    expect(skipped.status).toBe(200);
    const entries = unzip(Buffer.from(await skipped.arrayBuffer()));
    expect(Object.keys(entries)).toEqual(['AGENTYARD-SKIPPED.txt']);
    expect(entries['AGENTYARD-SKIPPED.txt']).toMatch(/huge\/one\.bin {2}\(17825792 bytes/);

    mkdirSync(path.join(workspace, 'many'));
    for (let index = 0; index < 33; index += 1) truncateSync(createEmpty(path.join(workspace, 'many', `part-${index}.bin`)), 16 * 1024 * 1024);
    const refused = await archive('?path=many');
    expect(refused.status).toBe(413);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/more than \d+ bytes/);
    const whole = await archive();
    expect(whole.status).toBe(413);
  });

  it('describes uploads and archives in the OpenAPI spec', async () => {
    const spec = (await test.api.request('GET', '/api/openapi.json')).body;
    expect(spec.paths['/api/conversations/{id}/files/content'].put.requestBody.content).toHaveProperty('application/octet-stream');
    expect(spec.paths['/api/conversations/{id}/files/archive'].get.summary).toMatch(/zip/);
  });
});

function createEmpty(file: string): string {
  writeFileSync(file, '');
  return file;
}
