/**
 * The Docker backend across a crash: the server process is SIGKILLed (nothing is released, no container is
 * removed) and started again on the same data directory. The next server's provider sweeps what the killed one
 * left behind when it starts (on the first sandbox it needs): containers of conversations are removed, warm
 * ones are adopted or removed, and conversations go on in new containers on the same workspace and Claude
 * session. Everything is checked through the real server, the real CLI and the Docker engine.
 */
import { createHash } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDocker, dockerStatus, type DockerClient } from '../../src/sandbox/docker/docker-client.ts';
import { dockerUnavailable, testImage } from '../../src/sandbox/docker/docker-test-support.ts';
import { ApiClient, untilTurnEnded, type StreamedEvent } from '../support/api-client.ts';
import { platformSecret } from '../support/platform.ts';
import { marker } from '../support/sandbox-probes.ts';
import { startScriptedModel, text, toolUse, type ScriptedModel } from '../support/scripted-model.ts';
import { killServer, startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { removeDataDir } from '../support/data-dir.ts';

const unavailable = await dockerUnavailable('runc', process.env);

// The provider's container labels (src/sandbox/docker/docker-provider.ts).
const label = {
  installation: 'dev.agentyard.installation',
  role: 'dev.agentyard.role',
  workspace: 'dev.agentyard.workspace',
  conversation: 'dev.agentyard.label.conversation',
} as const;
const poolSize = 1;

/**
 * Prompts the scripted model answers with one Bash call (then a short text); SLOW_TURN streams text for about
 * ten seconds, long enough to kill the server in its middle. Commands print markers (see sandbox-probes.ts).
 */
const commands: Record<string, string> = {
  WRITE_WORD: 'echo PINEAPPLE > /workspace/word.txt; echo WROTE=$?',
  READ_WORD: 'echo WORD=$(cat /workspace/word.txt 2>&1)',
  LEAVE_TMP: 'echo alice-private > /tmp/left-behind.txt; echo LEFT=$?',
  CHECK_TMP: 'echo FOUND=$(cat /tmp/left-behind.txt 2>/dev/null || echo nothing)',
};

/** One installation: its own data directory, so its own installation label and its own containers. */
interface Installation {
  dataDir: string;
  /** The provider's installation label: the first 16 hex digits of sha256(data directory). */
  id: string;
  servers: ServerProcess[];
}

describe.skipIf(unavailable !== null)(`a server SIGKILLed on the Docker backend${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let model: ScriptedModel;
  let docker: DockerClient;
  const installations: Installation[] = [];

  beforeAll(async () => {
    model = await startScriptedModel();
    docker = await connectDocker(process.env.DOCKER_HOST);
    model.setScript((request, context) => {
      // After the restart the resumed CLI may send the killed turn's prompt and the queued one as one user message.
      const key = Object.keys(commands).find((name) => request.lastUserText.includes(name));
      if (key) return request.toolResults === 0 ? toolUse('Bash', { command: commands[key]!, description: key }) : text(`finished ${key}`);
      if (request.lastUserText.includes('SLOW_TURN')) return text(Array.from({ length: 50 }, (_, position) => `chunk${position} `), { delayMs: 200 });
      return context.defaultScript(request, context);
    });
  });

  afterAll(async () => {
    for (const installation of installations) await cleanUp(installation);
    await model?.close();
  });

  const newInstallation = async (): Promise<Installation> => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-docker-restart-'));
    const installation: Installation = { dataDir, id: createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16), servers: [] };
    installations.push(installation);
    return installation;
  };

  const start = async (installation: Installation, extra: Record<string, string> = {}): Promise<ServerProcess> => {
    const server = await startServerProcess({
      AGENTYARD_DATA_DIR: installation.dataDir,
      ANTHROPIC_BASE_URL: model.url,
      ANTHROPIC_API_KEY: platformSecret,
      AGENTYARD_MODEL_MAX_RETRIES: '0',
      AGENTYARD_SANDBOX: 'docker',
      AGENTYARD_DOCKER_RUNTIME: 'runc',
      AGENTYARD_SANDBOX_IMAGE: testImage,
      AGENTYARD_SANDBOX_POOL_SIZE: String(poolSize),
      AGENTYARD_WORKSPACE_DISK_MB: '0',
      ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
      ...extra,
    });
    installation.servers.push(server);
    return server;
  };

  /** Every container carrying this installation's label, in any state. */
  const containersOf = (installation: Installation): Promise<Dockerode.ContainerInfo[]> =>
    docker.listContainers({ all: true, filters: { label: [`${label.installation}=${installation.id}`] } });

  const labelledWith = async (conversationId: string): Promise<Dockerode.ContainerInfo[]> =>
    docker.listContainers({ all: true, filters: { label: [`${label.conversation}=${conversationId}`] } });

  /** null when the container is gone. */
  const inspect = (containerId: string): Promise<Dockerode.ContainerInspectInfo | null> =>
    docker
      .getContainer(containerId)
      .inspect()
      .catch((error: unknown) => {
        if (dockerStatus(error) === 404) return null;
        throw error;
      });

  /** [role, state] of the installation's containers other than those named, sorted. */
  const others = async (installation: Installation, except: string[]): Promise<string[][]> =>
    (await containersOf(installation))
      .filter((container) => !except.includes(container.Id))
      .map((container) => [container.Labels[label.role] ?? '?', container.State])
      .sort();

  /** The containers the server logged as acquired for the conversation, with how (cold or claimed from the pool). */
  const acquisitions = (server: ServerProcess, conversationId: string): Array<{ containerId: string; how: string }> =>
    server.log.flatMap((line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; workspaceId?: string; containerId?: string; how?: string };
        return entry.msg === 'sandbox acquired' && entry.workspaceId === conversationId ? [{ containerId: entry.containerId!, how: entry.how! }] : [];
      } catch {
        return [];
      }
    });

  const sweepLog = (server: ServerProcess): Array<{ adopted: number; removed: number }> =>
    server.log.flatMap((line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; adopted: number; removed: number };
        return entry.msg === 'start-up sweep of sandbox containers' ? [{ adopted: entry.adopted, removed: entry.removed }] : [];
      } catch {
        return [];
      }
    });

  const sessionIds = (requests: ScriptedModel['requests']): string[] =>
    requests.filter((request) => request.path.startsWith('/v1/messages')).map((request) => request.headers['x-claude-code-session-id'] ?? '');

  /** The Bash output of a turn's single tool call. */
  const toolOutput = (events: StreamedEvent[], turnId: string): string => {
    const ended = events.filter((event) => event.event === 'tool.ended' && event.data.turnId === turnId);
    expect(ended, `turn ${turnId} should have run one tool call`).toHaveLength(1);
    return String(ended[0]!.data.output);
  };

  /** Sends a message, waits for its turn to end, expects it completed; returns the Bash output. */
  const turn = async (client: ApiClient, conversationId: string, message: string): Promise<string> => {
    const sent = await client.request('POST', `/api/conversations/${conversationId}/messages`, { text: message });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    const events = await client.readEvents(conversationId, { until: untilTurnEnded(sent.body.turnId), timeoutMs: 90_000 });
    const ended = events.find((event) => event.event === 'turn.ended' && event.data.turnId === sent.body.turnId);
    expect(ended?.data.status, JSON.stringify(ended?.data)).toBe('completed');
    return toolOutput(events, sent.body.turnId);
  };

  /** Waits until the pool holds its warm container next to the given sandboxes (the refill runs in the background). */
  const poolWarm = (installation: Installation, serving: string[]) =>
    expect
      .poll(() => others(installation, serving), { timeout: 30_000, interval: 200 })
      .toEqual(Array.from({ length: poolSize }, () => ['pool', 'running']));

  it('removes the container of the turn it killed; the conversation goes on in a new container, with its files and Claude session', async () => {
    const requestsAtStart = model.requests.length;
    const installation = await newInstallation();
    let server = await start(installation);
    const alice = await new ApiClient(server.url).registerWithToken('alice@example.com');
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    expect(marker(await turn(alice, conversation.id, 'WRITE_WORD'), 'WROTE')).toBe('0');

    // The first sandbox starts cold, labelled with its conversation and this installation; the pool then warms one.
    const [own, ...more] = await labelledWith(conversation.id);
    expect(more).toEqual([]);
    expect(own).toMatchObject({ State: 'running', Labels: { [label.installation]: installation.id, [label.role]: 'sandbox', [label.workspace]: conversation.id } });
    expect(acquisitions(server, conversation.id)).toEqual([{ containerId: own!.Id, how: 'cold' }]);
    await poolWarm(installation, [own!.Id]);

    // A slow turn runs, the next message waits in the queue, and the server is killed in the middle of the turn.
    const slow = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'SLOW_TURN' });
    expect(slow.status).toBe(202);
    await alice.readEvents(conversation.id, {
      until: (events) => events.filter((event) => event.event === 'message.delta' && event.data.turnId === slow.body.turnId).length >= 3,
    });
    const sessionsBefore = new Set(sessionIds(model.requests.slice(requestsAtStart)));
    expect(sessionsBefore.size).toBe(1);
    const [sessionBefore] = sessionsBefore;
    expect(sessionBefore).toBeTruthy();
    const requestsBefore = model.requests.length;
    const queued = await alice.request('POST', `/api/conversations/${conversation.id}/messages`, { text: 'READ_WORD' });
    expect(queued.status).toBe(202);
    const beforeKill = await containersOf(installation);
    expect(beforeKill.map((container) => container.State)).toEqual(['running', 'running']);
    expect((await inspect(own!.Id))?.State.Running).toBe(true);

    await killServer(server, 'SIGKILL');
    // Nothing removes the killed server's containers but the next server's sweep.
    expect((await containersOf(installation)).map((container) => container.Id).sort()).toEqual(beforeKill.map((container) => container.Id).sort());

    // The new server resumes the queued turn at start-up: its sandbox starts the provider, which sweeps first.
    server = await start(installation);
    const again = new ApiClient(server.url, alice.auth);
    const replay = await again.readEvents(conversation.id, { until: untilTurnEnded(queued.body.turnId), timeoutMs: 90_000 });
    const ends = replay.filter((event) => event.event === 'turn.ended' && [slow.body.turnId, queued.body.turnId].includes(event.data.turnId));
    expect(ends.map((event) => [event.data.turnId, event.data.status])).toEqual([
      [slow.body.turnId, 'interrupted'],
      [queued.body.turnId, 'completed'],
    ]);
    expect(ends[0]!.data.error.code).toBe('SERVER_RESTARTED');

    // The queued message ran in another container and found the file written before the kill.
    expect(marker(toolOutput(replay, queued.body.turnId), 'WORD')).toBe('PINEAPPLE');
    const [current, ...reacquired] = acquisitions(server, conversation.id);
    expect(reacquired).toEqual([]);
    expect(current!.containerId).not.toBe(own!.Id);
    expect((await inspect(current!.containerId))?.State.Running).toBe(true);

    // No orphan: the killed turn's container is gone, and no container but the current one carries the conversation.
    expect(await inspect(own!.Id)).toBeNull();
    expect((await labelledWith(conversation.id)).every((container) => container.Id === current!.containerId)).toBe(true);
    // No leak: the conversation's sandbox plus the warm pool, nothing else; of the killed server's containers at
    // most its warm one lives on (adopted, now serving or warm again).
    await poolWarm(installation, [current!.containerId]);
    const after = await containersOf(installation);
    expect(after.length).toBeLessThanOrEqual(poolSize + 1);
    const survivors = after.filter((container) => beforeKill.some((old) => old.Id === container.Id));
    expect(survivors.every((container) => container.Labels[label.role] === 'pool')).toBe(true);
    const [sweep, ...sweptAgain] = sweepLog(server);
    expect(sweptAgain).toEqual([]);
    expect(sweep!.adopted + sweep!.removed).toBe(beforeKill.length);
    expect(sweep!.removed).toBeGreaterThanOrEqual(1);

    // The CLI resumed the same Claude session, with the turns from before the kill.
    const resumed = model.requests.slice(requestsBefore).filter((request) => request.path.startsWith('/v1/messages'));
    expect(resumed.length).toBeGreaterThan(0);
    expect(new Set(sessionIds(resumed))).toEqual(new Set([sessionBefore]));
    expect(JSON.stringify(resumed[0]!.body)).toContain('WRITE_WORD');
  });

  it('removes a container that was paused when the server was killed', async () => {
    const installation = await newInstallation();
    const pauseFast = { AGENTYARD_PAUSE_AFTER_SECONDS: '1' };
    let server = await start(installation, pauseFast);
    const alice = await new ApiClient(server.url).registerWithToken('alice@example.com');
    const { body: conversation } = await alice.request('POST', '/api/conversations', {});
    expect(marker(await turn(alice, conversation.id, 'WRITE_WORD'), 'WROTE')).toBe('0');
    const [own, ...more] = await labelledWith(conversation.id);
    expect(more).toEqual([]);
    await poolWarm(installation, [own!.Id]);

    // Idle for a second: the sandbox is frozen (the cgroup freezer), and the server is killed while it is.
    await expect.poll(async () => (await inspect(own!.Id))?.State.Paused, { timeout: 15_000, interval: 200 }).toBe(true);
    await killServer(server, 'SIGKILL');
    expect((await inspect(own!.Id))?.State).toMatchObject({ Running: true, Paused: true });

    // The next message starts the provider of the new server; its sweep removes the frozen container.
    server = await start(installation, pauseFast);
    const again = new ApiClient(server.url, alice.auth);
    expect(marker(await turn(again, conversation.id, 'READ_WORD'), 'WORD')).toBe('PINEAPPLE');
    const [current, ...reacquired] = acquisitions(server, conversation.id);
    expect(reacquired).toEqual([]);
    expect(current!.containerId).not.toBe(own!.Id);
    expect(await inspect(own!.Id)).toBeNull();
    expect((await labelledWith(conversation.id)).every((container) => container.Id === current!.containerId)).toBe(true);
    await poolWarm(installation, [current!.containerId]);
    expect((await containersOf(installation)).length).toBeLessThanOrEqual(poolSize + 1);
  });

  it('does not take a warm container that served a conversation back into the pool', async () => {
    // A claimed warm container keeps its pool labels. When the server dies before its pool is refilled, or is
    // restarted with a bigger pool (as here), the sweep must still tell it from a fresh one: it holds the
    // conversation's mounts and whatever its processes left in /tmp.
    const installation = await newInstallation();
    let server = await start(installation);
    const alice = await new ApiClient(server.url).registerWithToken('alice@example.com');
    const { body: first } = await alice.request('POST', '/api/conversations', {});
    expect(marker(await turn(alice, first.id, 'WRITE_WORD'), 'WROTE')).toBe('0');
    const [firstContainer] = acquisitions(server, first.id);
    await poolWarm(installation, [firstContainer!.containerId]);
    const { body: second } = await alice.request('POST', '/api/conversations', {});
    expect(marker(await turn(alice, second.id, 'LEAVE_TMP'), 'LEFT')).toBe('0');
    const [claimed, ...reacquired] = acquisitions(server, second.id);
    expect(reacquired).toEqual([]);
    expect(claimed!.how).toBe('claimed');
    await poolWarm(installation, [firstContainer!.containerId, claimed!.containerId]);

    await killServer(server, 'SIGKILL');
    expect((await inspect(claimed!.containerId))?.State.Running).toBe(true);

    server = await start(installation, { AGENTYARD_SANDBOX_POOL_SIZE: String(poolSize + 1) });
    const bob = await new ApiClient(server.url).registerWithToken('bob@example.com');
    const sandboxes: string[] = [];
    for (const title of ['one', 'two']) {
      const { body: conversation } = await bob.request('POST', '/api/conversations', { title });
      expect(marker(await turn(bob, conversation.id, 'CHECK_TMP'), 'FOUND')).toBe('nothing');
      sandboxes.push(...acquisitions(server, conversation.id).map((acquired) => acquired.containerId));
    }
    expect(await inspect(claimed!.containerId)).toBeNull();
    expect(await inspect(firstContainer!.containerId)).toBeNull();
    expect(sandboxes).toHaveLength(2);
    expect(sandboxes).not.toContain(claimed!.containerId);
    await expect
      .poll(() => others(installation, sandboxes), { timeout: 30_000, interval: 200 })
      .toEqual([
        ['pool', 'running'],
        ['pool', 'running'],
      ]);
  });
});

/** Kills the test's servers, removes its containers, unmounts what the killed servers left mounted, deletes the data. */
async function cleanUp(installation: Installation): Promise<void> {
  for (const server of installation.servers) await killServer(server, 'SIGKILL');
  const docker = await connectDocker(process.env.DOCKER_HOST);
  const left = await docker.listContainers({ all: true, filters: { label: [`${label.installation}=${installation.id}`] } });
  await Promise.all(left.map((container) => docker.getContainer(container.Id).remove({ force: true, v: true }).catch(() => undefined)));
  await removeDataDir(installation.dataDir);
}

