import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/api-client.ts';
import { removeDataDir } from '../support/data-dir.ts';
import { platformSecret } from '../support/platform.ts';
import { killServer, startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { testConfiguration, testDatabaseFor } from '../support/test-configuration.ts';

const fileCount = 150_001;

/** Resident memory of a process, in bytes. */
function residentBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

interface Page {
  entries: { name: string; type: string }[];
  nextCursor: string | null;
}

describe('listing a directory of 150,001 files', () => {
  let dataDir: string;
  let server: ServerProcess | null = null;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-listing-'));
  });
  afterAll(async () => {
    if (server) await killServer(server, 'SIGTERM');
    await removeDataDir(dataDir);
  }, 120_000);

  it('pages through every name exactly once while four other clients page too, in bounded server memory', async () => {
    const configuration = testConfiguration();
    server = await startServerProcess({
      ...configuration.env,
      ...(configuration.store === 'postgres' ? { DATABASE_URL: await testDatabaseFor(dataDir) } : {}),
      AGENTYARD_DATA_DIR: dataDir,
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      ANTHROPIC_API_KEY: platformSecret,
      AGENTYARD_WORKSPACE_DISK_MB: '0',
      AGENTYARD_RATE_LIMIT_PER_TOKEN: '0',
      AGENTYARD_RATE_LIMIT_PER_USER: '0',
    });
    const pid = server.child.pid!;
    const alice = await new ApiClient(server.url).registerWithToken('alice@example.com');
    const conversationId = (await alice.request('POST', '/api/conversations', {})).body.id as string;
    // Made on the host, as an agent would have in its workspace: empty files, and a few directories.
    const workspace = path.join(dataDir, 'workspaces', conversationId, 'workspace');
    mkdirSync(path.join(workspace, 'Sub dir'), { recursive: true });
    mkdirSync(path.join(workspace, 'another'));
    execFileSync('sh', ['-c', `cd "$1" && seq -f 'file-%06g.txt' 1 ${fileCount - 3} | xargs touch && touch 'README.md'`, 'sh', workspace]);
    const expected = new Set(['Sub dir', 'another', 'README.md', ...Array.from({ length: fileCount - 3 }, (_, index) => `file-${String(index + 1).padStart(6, '0')}.txt`)]);

    const page = async (limit: number | null, cursor: string | null): Promise<Page> => {
      const query = new URLSearchParams({ path: '', ...(limit ? { limit: String(limit) } : {}), ...(cursor ? { cursor } : {}) });
      const response = await alice.request<Page>('GET', `/api/conversations/${conversationId}/files?${query}`);
      expect(response.status, JSON.stringify(response.body).slice(0, 300)).toBe(200);
      return response.body;
    };
    // Warm up the route, then take the server's resident memory as the baseline.
    await page(10, null);
    const baseline = residentBytes(pid);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, residentBytes(pid))), 50);

    let done = false;
    const seen: string[] = [];
    const pageSizes: number[] = [];
    const reader = async () => {
      let cursor: string | null = null;
      do {
        const next = await page(2000, cursor);
        pageSizes.push(next.entries.length);
        seen.push(...next.entries.map((entry) => entry.name));
        cursor = next.nextCursor;
      } while (cursor !== null);
      done = true;
    };
    const others = Array.from({ length: 4 }, async () => {
      let pages = 0;
      let cursor: string | null = null;
      // The default page size: a few pages each, while the reader pages.
      while (!done && pages < 3) {
        const next = await page(null, cursor);
        expect(next.entries.length).toBe(500);
        cursor = next.nextCursor;
        pages += 1;
      }
      return pages;
    });
    const slowest = { ms: 0 };
    const health = (async () => {
      while (!done) {
        const started = Date.now();
        expect((await fetch(`${server!.url}/healthz`)).status).toBe(200);
        slowest.ms = Math.max(slowest.ms, Date.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    try {
      await Promise.all([reader(), ...others, health]);
    } finally {
      clearInterval(sampler);
    }

    expect(seen.length).toBe(fileCount);
    expect(new Set(seen)).toEqual(expected);
    expect(seen.slice(0, 3)).toEqual(['another', 'Sub dir', 'file-000001.txt']);
    expect(Math.max(...pageSizes)).toBe(2000);
    expect(pageSizes.length).toBe(Math.ceil(fileCount / 2000));
    // Other requests are still answered (a generous bound: this only catches starvation).
    expect(slowest.ms).toBeLessThan(15_000);
    // A whole listing of this directory took about 700 MB; a page needs a few MB, whatever the directory holds.
    const growth = peak - baseline;
    expect(growth, `server RSS grew by ${(growth / 1024 / 1024).toFixed(0)} MiB`).toBeLessThan(150 * 1024 * 1024);

    // A limit over the maximum, and a cursor no listing gave, are refused.
    expect((await alice.request('GET', `/api/conversations/${conversationId}/files?limit=2001`)).status).toBe(400);
    expect((await alice.request('GET', `/api/conversations/${conversationId}/files?cursor=nonsense`)).status).toBe(400);
  }, 420_000);
});
