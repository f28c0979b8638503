import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerUnavailable, testImage } from '../../src/sandbox/docker/docker-test-support.ts';
import { type ApiClient, untilTurnEnded } from '../support/api-client.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { TerminalClient } from '../support/terminal-client.ts';
import { testConfiguration } from '../support/test-configuration.ts';

const configuration = testConfiguration();
const runtime = configuration.sandbox === 'docker' ? configuration.runtime : 'runc';
// These need a Docker engine to compare with (AGENTYARD_TEST_DOCKER=required makes its absence an error).
const skip = await dockerUnavailable(runtime, process.env);
const docker = { AGENTYARD_SANDBOX: 'docker', AGENTYARD_DOCKER_RUNTIME: runtime, AGENTYARD_SANDBOX_IMAGE: testImage, AGENTYARD_SANDBOX_POOL_SIZE: '0' };

const failures: Array<{ name: string; env: Record<string, string> }> = [
  { name: 'the Docker engine is unreachable', env: { ...docker, DOCKER_HOST: `unix://${path.join(tmpdir(), `agentyard-no-engine-${randomBytes(4).toString('hex')}.sock`)}` } },
  { name: 'the sandbox image is missing', env: { ...docker, AGENTYARD_SANDBOX_IMAGE: `agentyard-no-such-image-${randomBytes(4).toString('hex')}:latest` } },
];

for (const failure of failures) {
  describe.skipIf(skip !== null)(`a sandbox that cannot start: ${failure.name}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let test: TestPlatform;
    let alice: ApiClient;
    beforeAll(async () => {
      test = await startTestPlatform({ env: failure.env });
      alice = await test.api.registerWithToken('alice@example.com');
    });
    afterAll(() => test?.close());

    it('fails the turn with SANDBOX_UNAVAILABLE (never a 500), refuses a terminal with 503, and the server stays healthy', async () => {
      const conversation = (await alice.request('POST', '/api/conversations', {})).body.id as string;
      const expected = { code: 'SANDBOX_UNAVAILABLE', message: 'the agent’s sandbox could not be started; see the server log' };
      let after = 0;
      // Twice: a failed start leaves nothing behind that would wedge the next message.
      for (const text of ['hello', 'hello again']) {
        const sent = await alice.request('POST', `/api/conversations/${conversation}/messages`, { text });
        expect(sent.status, JSON.stringify(sent.body)).toBe(202);
        const events = await alice.readEvents(conversation, { after, until: untilTurnEnded(sent.body.turnId), timeoutMs: 90_000 });
        after = events.at(-1)!.id!;
        expect(events.filter((event) => event.event === 'error').map((event) => event.data)).toEqual([expect.objectContaining(expected)]);
        expect(events.at(-1)!.data).toMatchObject({ status: 'failed', error: expected });
      }
      const turns = await alice.request('GET', `/api/conversations/${conversation}`);
      expect(turns.status).toBe(200);

      // A terminal needs the sandbox too: refused with the same code.
      const terminal = TerminalClient.connect(`${test.platform.url.replace(/^http/, 'ws')}/api/conversations/${conversation}/terminal`, alice.authHeaders);
      const refusal = await terminal.then(
        async (client) => {
          const closed = await client.waitClosed(30_000);
          return { opened: true, closed, messages: client.messages };
        },
        (error: { status?: number; body?: string }) => ({ opened: false, status: error.status, body: error.body }),
      );
      expect(refusal).toMatchObject({ opened: false, status: 503 });

      expect((await fetch(`${test.platform.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${test.platform.url}/readyz`);
      expect(ready.status).toBe(503);
      const checks = ((await ready.json()) as { checks: Array<{ name: string; ok: boolean }> }).checks;
      expect(checks.filter((check) => !check.ok).length).toBeGreaterThan(0);
      expect((await alice.request('GET', '/api/conversations')).status).toBe(200);
    });
  });
}
