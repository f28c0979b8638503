import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../support/api-client.ts';
import { hostileRequestTargets } from '../support/hostile-paths.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { createSandboxProber, marker, markers, type SandboxProber } from '../support/sandbox-probes.ts';

/**
 * Issue 9, item 11: the gateway's allowlist must match the one spelling of a path the upstream will resolve. From
 * inside a real sandbox, with the sandbox's own token, raw requests for hostile paths go to the gateway; none may
 * reach the (scripted) upstream.
 */
const control = '/v1/models/claude-control-1';

/** Sends `GET <target>` with the sandbox's token to its gateway, raw, and prints `STATUS_<n>=<code>` for each. */
const requestScript = `
import base64, json, os, socket, sys, urllib.parse
gateway = urllib.parse.urlsplit(os.environ['ANTHROPIC_BASE_URL'])
token = os.environ['ANTHROPIC_API_KEY']
for index, target in enumerate(json.loads(base64.b64decode(sys.argv[1]))):
    connection = socket.create_connection((gateway.hostname, gateway.port), timeout=10)
    connection.sendall(b'GET ' + target.encode('utf-8') + b' HTTP/1.1\\r\\nhost: gateway\\r\\nx-api-key: ' + token.encode() + b'\\r\\nanthropic-version: 2023-06-01\\r\\nconnection: close\\r\\n\\r\\n')
    answer = b''
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            break
        answer += chunk
    connection.close()
    status = answer.split(b' ', 2)[1].decode() if answer.startswith(b'HTTP/1.1 ') else 'none'
    print('STATUS_%d=%s' % (index, status))
`;

describe('hostile request paths from a sandbox', () => {
  let test: TestPlatform;
  let prober: SandboxProber;
  let alice: ApiClient;

  beforeAll(async () => {
    test = await startTestPlatform();
    prober = createSandboxProber(test.model);
    prober.install();
    alice = await test.api.registerWithToken('alice@example.com');
  });
  afterAll(() => test?.close());

  it('answers 400 to every path with dot or empty segments, encodings or backslashes, and forwards none of them', async () => {
    const created = await alice.request('POST', '/api/conversations', { title: 'paths' });
    expect(created.status).toBe(201);
    const targets = [...hostileRequestTargets.map(([target]) => target), control];
    const encoded = Buffer.from(JSON.stringify(targets)).toString('base64');
    const probe = await prober.run(alice, created.body.id, `cat > /tmp/paths.py <<'PY'${requestScript}PY\npython3 /tmp/paths.py ${encoded}; echo DONE=$?`);
    expect(marker(probe.output, 'DONE')).toBe('0');

    const upstreamPaths = test.model.requests.map((request) => request.path);
    expect(upstreamPaths).toContain(control);
    // Only the CLI's own requests and the control reached the upstream.
    expect(upstreamPaths.filter((path) => path !== control && !/^\/v1\/messages(\/count_tokens)?(\?beta=true)?$/.test(path) && path !== '/')).toEqual([]);

    const statuses = markers(probe.output);
    const answered = targets.map((target, index) => [target, statuses[`STATUS_${index}`]]);
    // The control is a plain path the gateway forwards (the scripted model has no such model: 404).
    expect(answered.at(-1)).toEqual([control, '404']);
    expect(answered.slice(0, -1)).toEqual(hostileRequestTargets.map(([target]) => [target, '400']));
  });
});
