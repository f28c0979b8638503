import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('needs nothing: SQLite in ./data, local sandbox, 127.0.0.1:8080', () => {
    const config = loadConfig({ env: {}, cwd: '/srv/app' });
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(8080);
    expect(config.dataDir).toBe('/srv/app/data');
    expect(config.store).toEqual({ kind: 'sqlite', path: '/srv/app/data/agentyard.sqlite' });
    expect(config.sandbox.kind).toBe('local');
    expect(config.registration).toBe('open');
    expect(config.model).toEqual({ upstreamUrl: 'https://api.anthropic.com', credential: null });
    expect(config.secureCookies).toBe(false);
  });

  it('uses PostgreSQL when DATABASE_URL is set', () => {
    const config = loadConfig({ env: { DATABASE_URL: 'postgres://u:p@db:5432/agentyard' } });
    expect(config.store).toEqual({ kind: 'postgres', url: 'postgres://u:p@db:5432/agentyard' });
  });

  it('prefers the API key over the OAuth token and strips trailing slashes from the upstream', () => {
    const config = loadConfig({
      env: { ANTHROPIC_API_KEY: 'sk-1', CLAUDE_CODE_OAUTH_TOKEN: 'oat-1', ANTHROPIC_BASE_URL: 'http://127.0.0.1:9/' },
    });
    expect(config.model).toEqual({ upstreamUrl: 'http://127.0.0.1:9', credential: { kind: 'api-key', value: 'sk-1' } });
    expect(loadConfig({ env: { CLAUDE_CODE_OAUTH_TOKEN: 'oat-1' } }).model.credential).toEqual({
      kind: 'oauth-token',
      value: 'oat-1',
    });
  });

  it('lets flags override the environment', () => {
    const config = loadConfig({ env: { PORT: '9000' }, argv: ['--port', '9100', '--host=0.0.0.0'] });
    expect(config.port).toBe(9100);
    expect(config.host).toBe('0.0.0.0');
    expect(config.secureCookies).toBe(true);
  });

  it('lists every wrong setting, naming its environment variable', () => {
    let error: unknown;
    try {
      loadConfig({ env: { PORT: 'eighty', AGENTYARD_REGISTRATION: 'sometimes', DATABASE_URL: 'mysql://x' }, argv: ['--bogus'] });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/port: .*set PORT or --port/);
    expect(message).toMatch(/registration: .*set AGENTYARD_REGISTRATION/);
    expect(message).toMatch(/store\.url: must be a postgres.*set DATABASE_URL/);
    expect(message).toMatch(/unknown option --bogus/);
    expect((error as ConfigError).problems).toHaveLength(4);
  });
});

describe('loadConfig: bounds per user', () => {
  it('defaults to 3 sandboxes per user and 10 waiting messages per conversation, 30 per user, each settable and checked', () => {
    expect(loadConfig({ env: {} }).limits).toMatchObject({ sandboxesPerUser: 3, queuedPerConversation: 10, queuedPerUser: 30 });
    const set = loadConfig({ env: { AGENTYARD_MAX_SANDBOXES_PER_USER: '5', AGENTYARD_MAX_QUEUED_PER_CONVERSATION: '4', AGENTYARD_MAX_QUEUED_PER_USER: '8' } });
    expect(set.limits).toMatchObject({ sandboxesPerUser: 5, queuedPerConversation: 4, queuedPerUser: 8 });
    expect(() => loadConfig({ env: { AGENTYARD_MAX_SANDBOXES_PER_USER: '0' } })).toThrow(/AGENTYARD_MAX_SANDBOXES_PER_USER/);
    expect(() => loadConfig({ env: { AGENTYARD_MAX_QUEUED_PER_USER: 'lots' } })).toThrow(/AGENTYARD_MAX_QUEUED_PER_USER/);
  });
});

describe('loadConfig: the gateway’s settings', () => {
  it('defaults to unlimited quotas, no secret key, the built-in prices and generous rate limits', () => {
    const config = loadConfig({ env: {} });
    expect(config.quotas).toEqual({ tokensPerDay: null, tokensPerMonth: null, costPerDayUsd: null, costPerMonthUsd: null, concurrentSandboxes: null, sandboxHoursPerMonth: null });
    expect(config.secretKey).toBeNull();
    expect(config.prices).toBeNull();
    expect(config.rateLimits).toEqual({ windowSeconds: 60, perUser: 600, perToken: 300, anonymous: 120 });
    expect(config.gateway).toMatchObject({ maxStreamsPerSandbox: 8, egressMaxConnections: 32, egressHosts: {}, egressDnsServers: [] });
  });

  it('reads quotas, the secret key, prices and the egress resolver', () => {
    const key = Buffer.alloc(32, 7);
    const config = loadConfig({
      env: {
        AGENTYARD_QUOTA_TOKENS_PER_DAY: '5000',
        AGENTYARD_QUOTA_COST_PER_MONTH_USD: '12.5',
        AGENTYARD_QUOTA_CONCURRENT_SANDBOXES: 'unlimited',
        AGENTYARD_SECRET_KEY: key.toString('hex'),
        AGENTYARD_MODEL_PRICES: '{"m*":{"input":1,"output":2,"cacheWrite":3,"cacheRead":4}}',
        AGENTYARD_EGRESS_HOSTS: 'Remote.Test=203.0.113.7, remote.test=2001:db8::7',
        AGENTYARD_EGRESS_DNS_SERVERS: '127.0.0.1:5353, 10.0.0.2',
      },
    });
    expect(config.quotas).toMatchObject({ tokensPerDay: 5000, costPerMonthUsd: 12.5, concurrentSandboxes: null });
    expect(config.secretKey?.equals(key)).toBe(true);
    expect(config.prices).toEqual({ 'm*': { input: 1, output: 2, cacheWrite: 3, cacheRead: 4 } });
    expect(config.gateway.egressHosts).toEqual({ 'remote.test': ['203.0.113.7', '2001:db8::7'] });
    expect(config.gateway.egressDnsServers).toEqual(['127.0.0.1:5353', '10.0.0.2']);
  });

  it('names each wrong gateway setting and its variable', () => {
    let error: unknown;
    try {
      loadConfig({ env: { AGENTYARD_SECRET_KEY: 'too-short', AGENTYARD_QUOTA_TOKENS_PER_DAY: 'lots', AGENTYARD_MODEL_PRICES: '{"m":{"input":"x"}}' } });
    } catch (caught) {
      error = caught;
    }
    const message = (error as ConfigError).message;
    expect(message).toMatch(/secretKey: .*set AGENTYARD_SECRET_KEY/);
    expect(message).toMatch(/quotas\.tokensPerDay: .*set AGENTYARD_QUOTA_TOKENS_PER_DAY/);
    expect(message).toMatch(/usage\.prices: .*set AGENTYARD_MODEL_PRICES/);
    expect(message).not.toContain('too-short');
  });

  it('chooses the Docker backend with its runtime, image, pool, disk size and DOCKER_HOST', () => {
    const config = loadConfig({
      env: {
        AGENTYARD_SANDBOX: 'docker',
        AGENTYARD_DOCKER_RUNTIME: 'runsc',
        AGENTYARD_SANDBOX_IMAGE: 'registry.example/sandbox:1',
        AGENTYARD_SANDBOX_POOL_SIZE: '0',
        AGENTYARD_WORKSPACE_DISK_MB: '512',
        DOCKER_HOST: 'unix:///run/user/1000/docker.sock',
      },
    });
    expect(config.sandbox).toEqual({
      kind: 'docker',
      uid: 64000,
      gid: 64000,
      image: 'registry.example/sandbox:1',
      runtime: 'runsc',
      dockerHost: 'unix:///run/user/1000/docker.sock',
      poolSize: 0,
      workspaceDiskMb: 512,
    });
    expect(() => loadConfig({ env: { AGENTYARD_SANDBOX: 'docker', AGENTYARD_DOCKER_RUNTIME: 'kata' } })).toThrow(/AGENTYARD_DOCKER_RUNTIME/);
    expect(() => loadConfig({ env: { AGENTYARD_SANDBOX: 'kubernetes' } })).toThrow(/AGENTYARD_SANDBOX/);
  });

  it('gives the local backend a workspace size limit too, 0 (none) or at least 16 MiB', () => {
    expect(loadConfig({ env: {} }).sandbox).toMatchObject({ kind: 'local', workspaceDiskMb: 10_240 });
    expect(loadConfig({ env: { AGENTYARD_WORKSPACE_DISK_MB: '0' } }).sandbox).toMatchObject({ kind: 'local', workspaceDiskMb: 0 });
    expect(() => loadConfig({ env: { AGENTYARD_WORKSPACE_DISK_MB: '8' } })).toThrow(/AGENTYARD_WORKSPACE_DISK_MB/);
    expect(() => loadConfig({ env: { AGENTYARD_WORKSPACE_DISK_MB: '8' } })).toThrow(/at least 16 MiB/);
  });
});
