import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDocker } from '../../src/sandbox/docker/docker-client.ts';
import { dockerUnavailable, testImage } from '../../src/sandbox/docker/docker-test-support.ts';
import { ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { platformSecret, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { startScriptedModel, text, toolUse, type ScriptedModel } from '../support/scripted-model.ts';
import { removeDataDir } from '../support/data-dir.ts';

const unavailable = await dockerUnavailable('runc', process.env);

describe.skipIf(unavailable !== null)(`a conversation on the Docker backend${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let model: ScriptedModel;
  let dataDir: string;
  let test: TestPlatform | null = null;

  const env = {
    AGENTYARD_SANDBOX: 'docker',
    AGENTYARD_DOCKER_RUNTIME: 'runc',
    AGENTYARD_SANDBOX_IMAGE: testImage,
    AGENTYARD_SANDBOX_POOL_SIZE: '1',
    AGENTYARD_WORKSPACE_DISK_MB: '256',
    AGENTYARD_PAUSE_AFTER_SECONDS: '1',
    ANTHROPIC_API_KEY: platformSecret,
  };

  beforeAll(async () => {
    model = await startScriptedModel();
    dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-docker-lifecycle-'));
  });
  afterAll(async () => {
    await test?.close();
    await model?.close();
    await removeDataDir(dataDir);
  });

  const containersOf = async (conversationId: string) => {
    const docker = await connectDocker(process.env.DOCKER_HOST);
    return docker.listContainers({ all: true, filters: { label: [`dev.agentyard.label.conversation=${conversationId}`] } });
  };

  const send = async (client: ApiClient, conversationId: string, message: string) => {
    const sent = await client.request('POST', `/api/conversations/${conversationId}/messages`, { text: message });
    expect(sent.status).toBe(202);
    const events = await client.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId), timeoutMs: 90_000 });
    const ended = events.find((event) => event.event === 'turn.ended' && event.data.turnId === sent.body.turnId);
    expect(ended?.data.status, JSON.stringify(ended?.data)).toBe('completed');
    return events;
  };

  it('pauses when idle, resumes on the next message, and survives a server restart with its files and Claude session', async () => {
    test = await startTestPlatform({ env, model, dataDir });
    const alice = await test.api.registerWithToken('alice@example.com');
    const { body: conversation } = await alice.request('POST', '/api/conversations', { title: 'lifecycle' });

    model.setScript((request) =>
      request.toolResults === 0 ? toolUse('Bash', { command: 'echo PINEAPPLE > /workspace/word.txt; echo noted', description: 'note' }) : text('noted'),
    );
    await send(alice, conversation.id, 'remember the word PINEAPPLE');
    expect(await readFile(path.join(dataDir, 'workspaces', conversation.id, 'workspace', 'word.txt'), 'utf8')).toBe('PINEAPPLE\n');

    // Idle past AGENTYARD_PAUSE_AFTER_SECONDS: the container is frozen, and the next message thaws it.
    await expect.poll(async () => (await containersOf(conversation.id)).map((container) => container.State), { timeout: 10_000, interval: 200 }).toEqual(['paused']);
    model.setScript((request) => text(`the word was ${/PINEAPPLE/.test(JSON.stringify(request.body.messages)) ? 'PINEAPPLE' : 'unknown'}`));
    const afterPause = await send(alice, conversation.id, 'what was the word?');
    expect(JSON.stringify(afterPause)).toContain('the word was PINEAPPLE');

    // A server restart: the next message resumes the Claude session in a new container, on the same files.
    const before = (await containersOf(conversation.id)).map((container) => container.Id);
    await test.platform.close();
    test = await startTestPlatform({ env, model, dataDir });
    const again = new ApiClient(test.platform.url, alice.auth);
    const afterRestart = await send(again, conversation.id, 'and now?');
    expect(JSON.stringify(afterRestart)).toContain('the word was PINEAPPLE');
    const after = (await containersOf(conversation.id)).map((container) => container.Id);
    expect(after).toHaveLength(1);
    expect(before).not.toContain(after[0]);
    expect(await readFile(path.join(dataDir, 'workspaces', conversation.id, 'workspace', 'word.txt'), 'utf8')).toBe('PINEAPPLE\n');
  });
});
