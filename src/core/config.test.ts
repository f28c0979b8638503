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
