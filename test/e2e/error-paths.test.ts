import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { captureLog, type CapturedLog } from '../support/captured-log.ts';
import { agentProcesses } from '../support/host-processes.ts';
import { OpenEventStream } from '../support/open-event-stream.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { createSandboxProber, marker, type SandboxProber } from '../support/sandbox-probes.ts';
import { text, toolUse } from '../support/scripted-model.ts';
import { takeStoreAway } from '../support/store-outage.ts';
import { TerminalClient } from '../support/terminal-client.ts';
import { testConfiguration } from '../support/test-configuration.ts';

const configuration = testConfiguration();

/** Error paths of a turn, on the deployment of the test configuration (local and SQLite by default). */
describe(`error paths (${configuration.name})`, () => {
  let test: TestPlatform;
  let prober: SandboxProber;
  let alice: ApiClient;
  let log: CapturedLog;

  beforeAll(async () => {
    log = captureLog();
    test = await startTestPlatform({ logger: log.logger });
    prober = createSandboxProber(test.model);
    prober.install();
    alice = await test.api.registerWithToken('alice@example.com');
  });
  afterAll(() => test?.close());

  const newConversation = async (): Promise<string> => {
    const created = await alice.request('POST', '/api/conversations', {});
    expect(created.status).toBe(201);
    return created.body.id as string;
  };

  it('fails the turn with AGENT_FAILED naming the signal when the CLI crashes (SIGSEGV from its own Bash), and the next message gets a new CLI', async () => {
    const conversation = await newConversation();
    const ready = await prober.run(alice, conversation, 'echo READY=1', { timeoutMs: 90_000 });
    expect(marker(ready.output, 'READY')).toBe('1');
    const before = await agentProcesses(test.dataDir);
    expect(before).toHaveLength(1);
    // The Bash tool's command finds the CLI that runs it (the only `claude` in the sandbox) and crashes it.
    const crash = 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = claude ] && kill -SEGV "${p#/proc/}"; done; sleep 30; echo SURVIVED=1';
    const crashed = await prober.turn(alice, conversation, crash, { timeoutMs: 90_000 });
    const described = JSON.stringify(crashed.events.map((event) => event.data));
    const failure = { code: 'AGENT_FAILED', message: expect.stringMatching(/^the agent process ended unexpectedly \(signal SIGSEGV\)/) };
    expect(crashed.ended, described).toMatchObject({ status: 'failed', error: failure });
    expect(crashed.events.filter((event) => event.event === 'error').map((event) => event.data), described).toEqual([expect.objectContaining(failure)]);
    expect(crashed.events.some((event) => event.event === 'tool.ended'), described).toBe(false);

    const next = await prober.run(alice, conversation, 'echo NEXT=ok', { timeoutMs: 90_000 });
    expect(marker(next.output, 'NEXT')).toBe('ok');
    expect(next.events.filter((event) => event.event === 'error')).toEqual([]);
    const after = await agentProcesses(test.dataDir);
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
  });

  it('keeps every event of a turn while the store is away and answers 503 STORE_UNAVAILABLE meanwhile; the turn completes once it is back', async () => {
    const conversation = await newConversation();
    const workspace = test.workspaceDir(conversation);
    // Two commands, each waiting for a file the test creates: the first ends while the store is away, so that the
    // tool's result, the model's next message and the second command's start all happen then.
    const wait = (name: string) => `until [ -e /workspace/${name} ]; do sleep 0.2; done; echo ${name.toUpperCase()}=done`;
    let secondStep = false;
    test.model.setScript((request, context) => {
      if (!request.lastUserText.includes('OUTAGE')) return context.defaultScript(request, context);
      if (request.toolResults === 0) return toolUse('Bash', { command: wait('first'), description: 'wait' }, { text: 'Waiting for the first file.' });
      if (request.toolResults === 1) {
        secondStep = true;
        return toolUse('Bash', { command: wait('second'), description: 'wait' }, { text: 'Waiting for the second file.' });
      }
      return text('Both files arrived.');
    });
    try {
      const sent = await alice.request('POST', `/api/conversations/${conversation}/messages`, { text: 'OUTAGE' });
      expect(sent.status).toBe(202);
      const turnId: string = sent.body.turnId;
      await alice.readEvents(conversation, { until: (events) => events.some((event) => event.event === 'tool.started'), timeoutMs: 90_000 });

      const outage = await takeStoreAway(test.dataDir);
      try {
        await writeFile(path.join(workspace, 'first'), '');
        await waitUntil('the model is asked for the second step', () => secondStep, 60_000);
        // While the store is away: a clear error, and the server lives on.
        const refused = await alice.request('POST', '/api/conversations', {});
        expect(refused.status, JSON.stringify(refused.body)).toBe(503);
        expect(refused.body.error).toMatchObject({ code: 'STORE_UNAVAILABLE', message: 'the database is unavailable right now; try again shortly', requestId: expect.any(String) });
        expect((await fetch(`${test.platform.url}/healthz`)).status).toBe(200);
      } finally {
        await outage.end();
      }
      await writeFile(path.join(workspace, 'second'), '');

      const events = await alice.readEvents(conversation, { until: untilTurnEnded(turnId), timeoutMs: 90_000 });
      const described = events.map((event) => `${event.id} ${event.event} ${JSON.stringify(event.data).slice(0, 160)}`).join('\n');
      expect(events.map((event) => event.event), described).toEqual([
        'turn.queued',
        'turn.started',
        ...['message.delta', 'message.completed', 'tool.started', 'tool.ended'],
        ...['message.delta', 'message.completed', 'tool.started', 'tool.ended'],
        'message.delta',
        'message.completed',
        'turn.ended',
      ]);
      // Each event once, numbered without a gap.
      expect(events.map((event) => event.id)).toEqual(events.map((_, index) => index + 1));
      expect(events.filter((event) => event.event === 'tool.ended').map((event) => event.data.output)).toEqual(['FIRST=done', 'SECOND=done']);
      expect(events.at(-1)!.data).toMatchObject({ status: 'completed' });
      // The store did refuse the runner's appends meanwhile: they were retried, not dropped.
      const retried = log.entries().filter((entry) => entry.conversationId === conversation && entry.msg === 'the store is unavailable; the event will be retried');
      expect(retried.length, log.text().slice(-3000)).toBeGreaterThan(0);
    } finally {
      prober.install();
    }
  });
});

describe(`a full workspace on upload (${configuration.name})`, () => {
  let test: TestPlatform;
  let alice: ApiClient;
  beforeAll(async () => {
    // The smallest workspace disk the configuration allows; the upload limit (16 MiB) is above what it holds.
    test = await startTestPlatform({ env: { AGENTYARD_WORKSPACE_DISK_MB: '16' } });
    alice = await test.api.registerWithToken('alice@example.com');
  });
  afterAll(() => test?.close());

  const upload = async (conversation: string, name: string, bytes: Buffer) => {
    const response = await fetch(`${test.platform.url}/api/conversations/${conversation}/files/content?path=${encodeURIComponent(name)}`, {
      method: 'PUT',
      headers: { ...alice.authHeaders, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(bytes),
    });
    return { status: response.status, body: await response.json() };
  };

  it('answers 507 WORKSPACE_FULL for a file larger than the room left, leaves nothing of it behind, and the workspace still works', async () => {
    const conversation = (await alice.request('POST', '/api/conversations', {})).body.id as string;
    expect((await upload(conversation, 'keep.txt', Buffer.from('kept'))).status).toBe(201);

    const refused = await upload(conversation, 'big.bin', Buffer.alloc(15 * 1024 * 1024, 1));
    expect(refused.status, JSON.stringify(refused.body)).toBe(507);
    expect(refused.body.error).toEqual({ code: 'WORKSPACE_FULL', message: 'the workspace is full; nothing was written: big.bin', requestId: expect.any(String) });
    // Nothing of it is left: not the file, nor the temporary file it was written to.
    const listed = await alice.request('GET', `/api/conversations/${conversation}/files?path=`);
    expect(listed.body.entries.map((entry: { name: string }) => entry.name)).toEqual(['keep.txt']);
    expect((await readdir(test.workspaceDir(conversation))).filter((name) => name !== 'lost+found')).toEqual(['keep.txt']);

    // The room is back: a file that fits is written whole, and what was there is intact.
    const fits = Buffer.alloc(4 * 1024 * 1024, 2);
    expect((await upload(conversation, 'fits.bin', fits)).status).toBe(201);
    const read = await fetch(`${test.platform.url}/api/conversations/${conversation}/files/content?path=fits.bin`, { headers: alice.authHeaders });
    expect(Buffer.from(await read.arrayBuffer()).equals(fits)).toBe(true);
    expect((await alice.request('GET', `/api/conversations/${conversation}/files/content?path=keep.txt`)).body).toBe('kept');
  });
});

describe(`signing out (${configuration.name})`, () => {
  let test: TestPlatform;
  beforeAll(async () => {
    test = await startTestPlatform();
  });
  afterAll(() => test?.close());

  it('refuses the old session cookie after logout on /api/auth/me, an event stream and a terminal (401)', async () => {
    const alice = await test.api.register('alice@example.com');
    const conversation = (await alice.request('POST', '/api/conversations', {})).body.id as string;
    const terminalUrl = `${test.platform.url.replace(/^http/, 'ws')}/api/conversations/${conversation}/terminal`;
    const headers = { ...alice.authHeaders, origin: test.platform.url };
    // The cookie opens all three before logout.
    expect((await alice.request('GET', '/api/auth/me')).status).toBe(200);
    (await OpenEventStream.open(test.platform.url, conversation, alice.authHeaders)).close();
    const terminal = await TerminalClient.connect(terminalUrl, headers);
    terminal.close();
    await terminal.waitClosed();

    expect((await alice.request('POST', '/api/auth/logout')).status).toBe(204);

    const replayed = new ApiClient(test.platform.url, alice.auth);
    const me = await replayed.request('GET', '/api/auth/me');
    expect(me.status).toBe(401);
    expect(me.body.error).toMatchObject({ code: 'UNAUTHORIZED' });
    const events = await fetch(`${test.platform.url}/api/conversations/${conversation}/events`, { headers: { ...replayed.authHeaders, accept: 'text/event-stream' } });
    expect(events.status).toBe(401);
    expect(((await events.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    await expect(TerminalClient.connect(terminalUrl, headers)).rejects.toMatchObject({ status: 401 });
  });
});

/** Waits until `check` answers true. */
async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
