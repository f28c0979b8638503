import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { platformSecret } from '../support/platform.ts';
import { startScriptedModel, text, type ScriptedModel } from '../support/scripted-model.ts';
import { agentProcesses } from '../support/host-processes.ts';
import { testConfiguration, testDatabaseFor } from '../support/test-configuration.ts';
import { killServer, startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { removeDataDir } from '../support/data-dir.ts';

describe('a server killed during a turn', () => {
  let model: ScriptedModel;
  let dataDir: string;
  let server: ServerProcess | null = null;

  beforeAll(async () => {
    model = await startScriptedModel();
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-restart-'));
    if (configuration.store === 'postgres') database = { DATABASE_URL: await testDatabaseFor(dataDir) };
  });
  afterAll(async () => {
    if (server) await killServer(server, 'SIGTERM');
    await model?.close();
    await removeDataDir(dataDir);
  });

  const configuration = testConfiguration();
  let database: Record<string, string> = {};
  const env = (): Record<string, string> => ({
    ...configuration.env,
    ...database,
    AGENTYARD_DATA_DIR: dataDir,
    ANTHROPIC_BASE_URL: model.url,
    ANTHROPIC_API_KEY: platformSecret,
    AGENTYARD_MODEL_MAX_RETRIES: '0',
  });

  it('keeps every persisted event, marks the turn interrupted, and resumes the same Claude session', async () => {
    server = await startServerProcess(env());
    const alice = await new ApiClient(server.url).registerWithToken('alice@example.com');
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    const first = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'SCN_SLOW remember the word PINEAPPLE' });

    const seen = await alice.readEvents(conversation.id, { until: (events) => events.filter((event) => event.event === 'message.delta').length >= 3 });
    const sessionBefore = model.requests.find((request) => request.path.startsWith('/v1/messages'))!.headers['x-claude-code-session-id'];
    expect(sessionBefore).toBeTruthy();
    // A message sent during the turn waits in the queue; it must survive the kill too.
    model.setScript((request) => text(`the word was ${/PINEAPPLE/.test(JSON.stringify(request.body.messages)) ? 'PINEAPPLE' : 'unknown'}`));
    const requestsBefore = model.requests.length;
    const queued = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'what was the word?' });
    expect(queued.status).toBe(202);

    const agents = await agentProcesses(dataDir);
    expect(agents.length).toBeGreaterThan(0);
    await killServer(server, 'SIGKILL');
    server = null;
    const leftOver = async () => (await agentProcesses(dataDir)).filter((agent) => agents.includes(agent));
    // A local sandbox and its agent die with the server. Containers outlive it: the next server's start-up sweep
    // removes them. Either way nothing of the killed turn is left running.
    if (configuration.sandbox === 'local') await expect.poll(leftOver, { timeout: 5000 }).toEqual([]);

    server = await startServerProcess(env());
    await expect.poll(leftOver, { timeout: 20_000 }).toEqual([]);
    const again = new ApiClient(server.url, alice.auth);
    const replay = await again.readEvents(conversation.id, { until: untilTurnEnded(queued.body.turnId) });
    // Everything the client saw before the kill is intact, in order, with the same ids.
    expect(replay.slice(0, seen.length)).toEqual(seen);
    const ends = replay.filter((event) => event.event === 'turn.ended');
    expect(ends.map((event) => [event.data.turnId, event.data.status])).toEqual([
      [first.body.turnId, 'interrupted'],
      [queued.body.turnId, 'completed'],
    ]);
    expect(ends[0]!.data.error.code).toBe('SERVER_RESTARTED');
    const detail = await again.request('GET', `/api/conversations/${conversation.id}`);
    expect(detail.body.turns.map((turn: { status: string }) => turn.status)).toEqual(['interrupted', 'completed']);
    const reply = replay.find((event) => event.event === 'message.completed' && event.data.turnId === queued.body.turnId)!;
    expect(reply.data.text).toBe('the word was PINEAPPLE');

    // The resumed CLI sent the earlier messages under the same Claude session id.
    const resumed = model.requests.slice(requestsBefore).filter((request) => request.path.startsWith('/v1/messages'));
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed[0]!.headers['x-claude-code-session-id']).toBe(sessionBefore);
    expect(JSON.stringify(resumed[0]!.body)).toContain('remember the word PINEAPPLE');
  });
});
