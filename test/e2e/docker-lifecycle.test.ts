import { createHash } from 'node:crypto';
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
const gvisorUnavailable = await dockerUnavailable('runsc', process.env);

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

  it.skipIf(gvisorUnavailable !== null)(`runs an agent that asks for gVisor under runsc, and the others under the installation's runc${gvisorUnavailable ? ` (skipped: ${gvisorUnavailable})` : ''}`, async () => {
    test ??= await startTestPlatform({ env, model, dataDir });
    const bob = await test.api.registerWithToken('bob@example.com');
    expect((await bob.request('GET', '/api/status')).body.sandbox).toEqual({ backend: 'docker', runtimes: ['runc', 'runsc'], defaultRuntime: 'runc' });
    const created = await bob.request('POST', '/api/agents', { name: 'Untrusted code', model: 'claude-sonnet-5', limits: { memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 120 }, sandboxRuntime: 'runsc' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.sandboxRuntime).toBe('runsc');
    const strong = (await bob.request('POST', '/api/conversations', { agentId: created.body.id })).body;
    const plain = (await bob.request('POST', '/api/conversations', {})).body;
    // gVisor answers uname with its own kernel; dmesg shows its boot messages.
    model.setScript((request) =>
      request.toolResults === 0 ? toolUse('Bash', { command: 'dmesg 2>/dev/null | grep -c -i gvisor; true', description: 'kernel' }) : text('checked'),
    );
    const kernelOutput = async (conversationId: string) => {
      const events = await send(bob, conversationId, 'which kernel?');
      return String(events.find((event) => event.event === 'tool.ended')?.data.output).trim();
    };
    expect(Number(await kernelOutput(strong.id))).toBeGreaterThan(0);
    expect(await kernelOutput(plain.id)).toBe('0');
    // Every container of this installation runs under runc (the plain conversation's was claimed from the warm
    // pool, so it carries no conversation label), except the gVisor agent's.
    const docker = await connectDocker(process.env.DOCKER_HOST);
    const installation = createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16);
    const containers = await docker.listContainers({ all: true, filters: { label: [`dev.agentyard.installation=${installation}`] } });
    const runtimes = await Promise.all(
      containers.map(async (container) => [container.Labels['dev.agentyard.label.conversation'] ?? '-', (await docker.getContainer(container.Id).inspect()).HostConfig.Runtime] as const),
    );
    expect(runtimes.filter(([, runtime]) => runtime === 'runsc')).toEqual([[strong.id, 'runsc']]);
    expect(runtimes.filter(([, runtime]) => runtime !== 'runsc').length).toBeGreaterThanOrEqual(2);
    expect(runtimes.every(([, runtime]) => runtime === 'runsc' || runtime === 'runc')).toBe(true);
    // Switching the agent back applies to its next sandbox.
    const patched = await bob.request('PATCH', `/api/agents/${created.body.id}`, { sandboxRuntime: 'default' });
    expect(patched.body.sandboxRuntime).toBe('default');
    const switchedBack = (await bob.request('POST', '/api/conversations', { agentId: created.body.id })).body;
    expect(await kernelOutput(switchedBack.id)).toBe('0');
    const gvisorContainers = async () => {
      const listed = await docker.listContainers({ all: true, filters: { label: [`dev.agentyard.installation=${installation}`] } });
      const inspected = await Promise.all(listed.map(async (container) => [container.Labels['dev.agentyard.label.conversation'] ?? '-', (await docker.getContainer(container.Id).inspect()).HostConfig.Runtime] as const));
      return inspected.filter(([, runtime]) => runtime === 'runsc').map(([conversation]) => conversation);
    };
    expect(await gvisorContainers()).toEqual([strong.id]);
    const bad = await bob.request('PATCH', `/api/agents/${created.body.id}`, { sandboxRuntime: 'kata' });
    expect(bad.status).toBe(400);
  });
});
