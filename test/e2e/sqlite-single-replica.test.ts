import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/api-client.ts';
import { removeDataDir } from '../support/data-dir.ts';
import { killServer, startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { testConfiguration } from '../support/test-configuration.ts';

// Always SQLite, whatever store the test configuration names: the single-server rule is SQLite's.
describe('a second server on the data directory of a SQLite server', () => {
  let dataDir: string;
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-single-replica-'));
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => killServer(server, 'SIGTERM')));
    await removeDataDir(dataDir);
  });

  // No DATABASE_URL: the store is the data directory's SQLite file. PORT is 0, so servers never compete for a port.
  const env = (): Record<string, string> => ({ ...testConfiguration().env, AGENTYARD_DATA_DIR: dataDir });
  const start = async (): Promise<ServerProcess> => {
    const server = await startServerProcess(env());
    servers.push(server);
    return server;
  };
  const titles = async (client: ApiClient): Promise<string[]> =>
    (await client.request('GET', '/api/conversations')).body.conversations.map((conversation: { title: string }) => conversation.title).sort();

  it('refuses to start, leaves the first serving, and a new server starts once the first is SIGKILLed', async () => {
    const first = await start();
    const alice = await new ApiClient(first.url).registerWithToken('alice@example.com');
    expect((await alice.request('POST', '/api/conversations', { title: 'before' })).status).toBe(201);

    const refusal = await start().then(
      () => null,
      (error: Error) => error.message,
    );
    expect(refusal, 'the second server started').not.toBeNull();
    expect(refusal).toMatch(/^server exited \(1\) before listening/);
    expect(refusal).toContain(`another Agentyard server is already using the data directory ${dataDir}`);
    expect(refusal).toContain(path.join(dataDir, 'agentyard.sqlite'));
    expect(refusal).toMatch(/several replicas, use PostgreSQL \(set DATABASE_URL/);

    // The first server is untouched: it answers, reads and writes.
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    expect((await alice.request('POST', '/api/conversations', { title: 'after the refusal' })).status).toBe(201);
    expect(await titles(alice)).toEqual(['after the refusal', 'before']);

    // A SIGKILLed server runs no clean-up: the lock must go with the process, or no server could start again.
    await killServer(first, 'SIGKILL');
    const next = await start();
    expect(await titles(new ApiClient(next.url, alice.auth))).toEqual(['after the refusal', 'before']);
  });
});
