import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { removeDataDir } from '../support/data-dir.ts';
import { seedEventHistory } from '../support/event-history.ts';
import { platformSecret } from '../support/platform.ts';
import { RawEventStream } from '../support/raw-event-stream.ts';
import { startScriptedModel, text, type ScriptedModel } from '../support/scripted-model.ts';
import { killServer, startServerProcess, type ServerProcess } from '../support/server-process.ts';

describe('an event stream whose client stops reading', () => {
  let model: ScriptedModel;
  let dataDir: string;
  let server: ServerProcess | null = null;
  let stalled: RawEventStream | null = null;

  beforeAll(async () => {
    model = await startScriptedModel();
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-sse-stall-'));
  });
  afterAll(async () => {
    await stalled?.destroy();
    if (server) await killServer(server, 'SIGTERM');
    await model?.close();
    await removeDataDir(dataDir);
  });

  it('is ended after the stall timeout; resuming with Last-Event-ID gives every event once, in order', async () => {
    server = await startServerProcess({
      AGENTYARD_DATA_DIR: dataDir,
      ANTHROPIC_BASE_URL: model.url,
      ANTHROPIC_API_KEY: platformSecret,
      AGENTYARD_MODEL_MAX_RETRIES: '0',
      AGENTYARD_EVENT_STREAM_STALL_SECONDS: '2',
      // One stream per conversation: the resumed stream is let in only if the stalled one gave its slot back.
      AGENTYARD_EVENT_STREAMS_PER_CONVERSATION: '1',
    });
    const alice = await new ApiClient(server.url).registerWithToken('alice@example.com');
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    const seeded = await seedEventHistory(dataDir, conversation.id, { count: 160, eventBytes: 32 * 1024 }); // 5 MiB

    stalled = RawEventStream.open(server.url, `/api/conversations/${conversation.id}/events`, alice.authHeaders);
    // Live events arrive while the client does not read: a turn streams 300 deltas.
    model.setScript(() => text(Array.from({ length: 300 }, (_, index) => `d${index} `)));
    const sent = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'talk a lot' });
    expect(sent.status).toBe(202);
    await expect
      .poll(async () => (await alice.request('GET', `/api/conversations/${conversation.id}`)).body.turns.map((turn: { status: string }) => turn.status), {
        timeout: 60_000,
        interval: 250,
      })
      .toEqual(['completed']);

    // The server cut the stream off (its log says so), though the client never closed it.
    await expect.poll(() => server!.log.some((line) => line.includes('event stream ended: the client stopped reading')), { timeout: 20_000 }).toBe(true);
    stalled.resume();
    await stalled.ended;
    const first = stalled.events();
    const firstIds = first.map((event) => event.id);
    expect(firstIds.length).toBeGreaterThan(0);
    expect(firstIds.length).toBeLessThan(seeded);
    expect(firstIds).toEqual(firstIds.map((_, index) => index + 1));

    const rest = await alice.readEvents(conversation.id, { after: firstIds.at(-1)!, until: untilTurnEnded(sent.body.turnId) });
    const ids = [...firstIds, ...rest.map((event) => event.id)];
    expect(ids).toEqual(ids.map((_, index) => index + 1));
    const live = rest.filter((event) => event.id! > seeded);
    expect(live[0]!.event).toBe('turn.queued');
    expect(live.at(-1)!.event).toBe('turn.ended');
    expect(live.filter((event) => event.event === 'message.delta').map((event) => event.data.text).join('')).toBe(
      Array.from({ length: 300 }, (_, index) => `d${index} `).join(''),
    );
  });
});
