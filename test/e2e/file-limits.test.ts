import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { TerminalClient } from '../support/terminal-client.ts';

/** Names and sizes of a zip's entries, read by an independent implementation (Python's zipfile). */
function zipSizes(bytes: Buffer): Record<string, number> {
  const script = 'import json,sys,zipfile,io\nz=zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()))\nprint(json.dumps({i.filename: len(z.read(i)) for i in z.infolist()}))';
  return JSON.parse(execFileSync('python3', ['-c', script], { input: bytes, env: { PATH: '/usr/bin:/bin' }, maxBuffer: 64 * 1024 * 1024 }).toString());
}

function zipText(bytes: Buffer, name: string): string {
  const script = `import sys,zipfile,io\nz=zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()))\nsys.stdout.write(z.read(${JSON.stringify(name)}).decode())`;
  return execFileSync('python3', ['-c', script], { input: bytes, env: { PATH: '/usr/bin:/bin' }, maxBuffer: 64 * 1024 * 1024 }).toString();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('workspace file limits', () => {
  let test: TestPlatform;
  let alice: ApiClient;
  let maxFileBytes: number;

  beforeAll(async () => {
    // No workspace disk: the trees below are made on the host, in the plain workspace directory.
    test = await startTestPlatform({ env: { AGENTYARD_WORKSPACE_DISK_MB: '0', AGENTYARD_RATE_LIMIT_PER_TOKEN: '0' } });
    alice = await test.api.registerWithToken('alice@example.com');
    maxFileBytes = (await alice.request('GET', '/api/status')).body.limits.maxUploadBytes;
  });
  afterAll(() => test?.close(), 120_000);

  const newConversation = async (): Promise<string> => (await alice.request('POST', '/api/conversations', {})).body.id;
  const get = (conversationId: string, route: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${test.platform.url}/api/conversations/${conversationId}${route}`, { ...init, headers: alice.authHeaders });

  it('answers 413, never 500 nor more than the limit, while a process in the sandbox swings a file between 10 B and 3 GiB', async () => {
    const conversationId = await newConversation();
    const terminal = await TerminalClient.connect(`${test.platform.url.replace(/^http/, 'ws')}/api/conversations/${conversationId}/terminal`, alice.authHeaders);
    try {
      await terminal.waitFor(/\$ $/m, 60_000);
      // Sparse sizes (truncate), switched as fast as perl can: any read may find the file at either size or in between.
      terminal.type(`mkdir -p /workspace/swing && cd /workspace/swing && echo kept > kept.txt && : > swing.bin; perl -e 'while (1) { truncate("swing.bin", 10); truncate("swing.bin", 3 << 30) }' & echo started-$((6*7))\r`);
      await terminal.waitFor(/started-42/);
      const statuses: number[] = [];
      const check = async (response: Response, what: string): Promise<Buffer | null> => {
        statuses.push(response.status);
        expect([200, 413], `${what} answered ${response.status}`).toContain(response.status);
        if (response.status === 413) {
          expect(((await response.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
          return null;
        }
        const body = Buffer.from(await response.arrayBuffer());
        return body;
      };
      for (let attempt = 0; attempt < 30; attempt++) {
        const download = attempt % 3 === 0 ? '&download=1' : '';
        const body = await check(await get(conversationId, `/files/content?path=swing/swing.bin${download}`), `read ${attempt}`);
        if (body) expect(body.length).toBeLessThanOrEqual(maxFileBytes);
      }
      for (let attempt = 0; attempt < 4; attempt++) {
        const zip = await check(await get(conversationId, '/files/archive?path=swing'), `archive ${attempt}`);
        if (!zip) continue;
        const sizes = zipSizes(zip);
        expect(sizes['kept.txt']).toBe(5);
        expect(sizes['swing.bin'] ?? 0).toBeLessThanOrEqual(maxFileBytes);
      }
      // The swing was real: some reads found the file over the limit.
      expect(statuses).toContain(413);
    } finally {
      terminal.type('kill %1; exit\r');
      await terminal.waitClosed().catch(() => terminal.close());
    }
  }, 180_000);

  it('archives a 2,000-level-deep directory down to the depth limit, naming what it left out', async () => {
    const conversationId = await newConversation();
    const workspace = test.workspaceDir(conversationId);
    // 2,000 one-letter levels, made a few hundred at a time (a whole path would pass PATH_MAX).
    mkdirSync(workspace, { recursive: true });
    execFileSync('sh', ['-c', 'cd "$1" && for i in $(seq 1 10); do mkdir -p "$(printf "d/%.0s" $(seq 1 200))" && cd "$(printf "d/%.0s" $(seq 1 200))"; done && echo deep > bottom.txt', 'sh', workspace]);
    execFileSync('sh', ['-c', 'cd "$1" && mkdir -p d/d/near && echo near > d/d/near/file.txt', 'sh', workspace]);

    const response = await get(conversationId, '/files/archive', { signal: AbortSignal.timeout(60_000) });
    expect(response.status).toBe(200);
    const zip = Buffer.from(await response.arrayBuffer());
    const names = Object.keys(zipSizes(zip));
    const depth = (name: string) => name.replace(/\/$/, '').split('/').length;
    expect(names).toContain('d/d/near/file.txt');
    expect(Math.max(...names.map(depth))).toBe(64);
    expect(names).toContain(`${'d/'.repeat(64)}`);
    expect(names.some((name) => name.endsWith('bottom.txt'))).toBe(false);
    expect(zipText(zip, 'AGENTYARD-SKIPPED.txt')).toContain(`${'d/'.repeat(64)}  (deeper than 64 levels`);
    expect(Number(response.headers.get('x-agentyard-skipped'))).toBe(1);
    // GNU rm walks any depth; the platform's own clean-up would meet paths near PATH_MAX.
    execFileSync('rm', ['-rf', path.join(workspace, 'd')]);
  }, 120_000);

  it('stops walking the workspace when the client goes away', async (context) => {
    const conversationId = await newConversation();
    const tree = path.join(test.workspaceDir(conversationId), 'tree');
    // 40 directories of 50 empty ones: a walk of 2,041 listings, far more than the few made before the client leaves.
    execFileSync('sh', ['-c', 'mkdir -p "$1" && cd "$1" && for i in $(seq -f "p%03g" 1 40); do mkdir "$i" && (cd "$i" && mkdir $(seq -f "c%03g" 1 50)); done', 'sh', tree]);
    const number = (value: number) => String(value).padStart(3, '0');
    const parents = Array.from({ length: 40 }, (_, index) => path.join(tree, `p${number(index + 1)}`));
    const directories = [tree, ...parents, ...parents.flatMap((parent) => Array.from({ length: 50 }, (_, index) => path.join(parent, `c${number(index + 1)}`)))];
    // Reading a directory sets its access time when that is older than a day (relatime): so a read can be seen.
    const old = new Date('2001-01-01T00:00:00Z');
    for (const directory of directories) utimesSync(directory, old, old);
    const read = () => directories.filter((directory) => statSync(directory).atimeMs > old.getTime()).length;
    execFileSync('ls', [directories[1]!]);
    if (read() === 0) return context.skip('this file system does not record access times (noatime), so reads cannot be seen');
    utimesSync(directories[1]!, old, old);

    const client = new AbortController();
    const response = get(conversationId, '/files/archive?path=tree', { signal: client.signal }).catch(() => null);
    const started = Date.now();
    // The walk starts with the top directory (one stat: the server runs in this process, so polling must stay cheap).
    while (statSync(tree).atimeMs <= old.getTime() && Date.now() - started < 60_000) await sleep(5);
    client.abort();
    expect(await response).toBeNull();
    // Wait until the count holds still (a walk that goes on would read them all within the minute).
    const deadline = Date.now() + 60_000;
    let before = -1;
    let now = read();
    while (now !== before && Date.now() < deadline) {
      await sleep(1500);
      before = now;
      now = read();
    }
    expect(now).toBeGreaterThan(0);
    expect(now, `${now} of ${directories.length} directories were read`).toBeLessThan(directories.length / 2);
    // The server is fine afterwards.
    expect((await get(conversationId, '/files?path=tree')).status).toBe(200);
  }, 150_000);
});
