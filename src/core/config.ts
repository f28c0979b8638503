import path from 'node:path';
import { z } from 'zod';

/** Where each setting comes from in the environment; error messages name these. */
const envNames = {
  host: 'HOST',
  port: 'PORT',
  dataDir: 'AGENTYARD_DATA_DIR',
  logLevel: 'AGENTYARD_LOG_LEVEL',
  registration: 'AGENTYARD_REGISTRATION',
  secureCookies: 'AGENTYARD_SECURE_COOKIES',
  'store.url': 'DATABASE_URL',
  'sandbox.kind': 'AGENTYARD_SANDBOX',
  'sandbox.uid': 'AGENTYARD_SANDBOX_UID',
  'model.upstreamUrl': 'ANTHROPIC_BASE_URL',
  'model.apiKey': 'ANTHROPIC_API_KEY',
  'model.oauthToken': 'CLAUDE_CODE_OAUTH_TOKEN',
  'agent.claudeBinary': 'AGENTYARD_CLAUDE_BINARY',
  'agent.defaultModel': 'AGENTYARD_DEFAULT_MODEL',
  'agent.pauseAfterSeconds': 'AGENTYARD_PAUSE_AFTER_SECONDS',
  'agent.idleTimeoutSeconds': 'AGENTYARD_IDLE_TIMEOUT_SECONDS',
  'agent.turnTimeoutSeconds': 'AGENTYARD_TURN_TIMEOUT_SECONDS',
  'agent.maxRetries': 'AGENTYARD_MODEL_MAX_RETRIES',
  'agent.requestTimeoutMs': 'AGENTYARD_MODEL_REQUEST_TIMEOUT_MS',
  'limits.maxMessageBytes': 'AGENTYARD_MAX_MESSAGE_BYTES',
} as const;

type SettingName = keyof typeof envNames;

/** Command-line flags accepted by `serve`, each naming a setting. */
const flagNames: Record<string, SettingName> = {
  '--host': 'host',
  '--port': 'port',
  '--data-dir': 'dataDir',
  '--log-level': 'logLevel',
  '--registration': 'registration',
  '--database-url': 'store.url',
};

const positiveInt = z.coerce.number().int().positive();
const booleanish = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

const rawSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  dataDir: z.string().min(1).default('./data'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  registration: z.enum(['open', 'invite', 'closed']).default('open'),
  secureCookies: booleanish.optional(),
  'store.url': z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' }).optional(),
  'sandbox.kind': z.literal('local', { error: 'must be "local" (docker and kubernetes are not available yet)' }).default('local'),
  'sandbox.uid': z.coerce.number().int().min(1).max(2 ** 31).default(64000),
  'model.upstreamUrl': z.url({ protocol: /^https?$/ }).default('https://api.anthropic.com'),
  'model.apiKey': z.string().min(1).optional(),
  'model.oauthToken': z.string().min(1).optional(),
  'agent.claudeBinary': z.string().min(1).optional(),
  'agent.defaultModel': z.string().min(1).default('claude-sonnet-5'),
  'agent.pauseAfterSeconds': z.coerce.number().int().min(0).default(60),
  'agent.idleTimeoutSeconds': positiveInt.default(600),
  'agent.turnTimeoutSeconds': positiveInt.default(900),
  'agent.maxRetries': z.coerce.number().int().min(0).max(15).default(2),
  'agent.requestTimeoutMs': positiveInt.default(120_000),
  'limits.maxMessageBytes': positiveInt.default(100_000),
});

export type ModelCredential = { kind: 'api-key'; value: string } | { kind: 'oauth-token'; value: string };

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  logLevel: string;
  registration: 'open' | 'invite' | 'closed';
  /** Set the Secure flag on the session cookie (default: when not bound to loopback). */
  secureCookies: boolean;
  store: { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };
  sandbox: { kind: 'local'; uid: number; gid: number };
  model: { upstreamUrl: string; credential: ModelCredential | null };
  agent: {
    claudeBinary: string;
    defaultModel: string;
    /** Pause an idle sandbox after this long (0: never); stop it after idleTimeoutSeconds. */
    pauseAfterSeconds: number;
    idleTimeoutSeconds: number;
    turnTimeoutSeconds: number;
    maxRetries: number;
    requestTimeoutMs: number;
  };
  limits: { maxMessageBytes: number };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

/** The pinned CLI binary shipped in node_modules, found from this file's location. */
export function defaultClaudeBinary(): string {
  return path.resolve(import.meta.dirname, '../../node_modules/@anthropic-ai/claude-code/bin/claude.exe');
}

function describeSource(setting: SettingName): string {
  const flag = Object.entries(flagNames).find(([, name]) => name === setting)?.[0];
  return flag ? `set ${envNames[setting]} or ${flag}` : `set ${envNames[setting]}`;
}

/**
 * Builds the configuration from the environment and command-line flags (flags win).
 * Pure apart from reading `cwd`; throws one ConfigError listing every problem.
 */
export function loadConfig(input: { env: Record<string, string | undefined>; argv?: string[]; cwd?: string }): Config {
  const cwd = input.cwd ?? process.cwd();
  const raw: Partial<Record<SettingName, string>> = {};
  const problems: string[] = [];
  for (const [setting, envName] of Object.entries(envNames) as [SettingName, string][]) {
    const value = input.env[envName];
    if (value !== undefined && value !== '') raw[setting] = value;
  }
  const argv = input.argv ?? [];
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] ?? '';
    const [flag, inline] = argument.split(/=(.*)/s, 2) as [string, string | undefined];
    const setting = flagNames[flag];
    if (!setting) {
      problems.push(`unknown option ${flag}`);
      continue;
    }
    const value = inline ?? argv[++index];
    if (value === undefined) problems.push(`${flag} needs a value`);
    else raw[setting] = value;
  }

  const parsed = rawSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const setting = String(issue.path[0]) as SettingName;
      problems.push(`${setting}: ${issue.message} (${describeSource(setting)})`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const values = parsed.data;

  const dataDir = path.resolve(cwd, values.dataDir);
  const claudeBinary = path.resolve(cwd, values['agent.claudeBinary'] ?? defaultClaudeBinary());
  const credential: ModelCredential | null = values['model.apiKey']
    ? { kind: 'api-key', value: values['model.apiKey'] }
    : values['model.oauthToken']
      ? { kind: 'oauth-token', value: values['model.oauthToken'] }
      : null;
  const loopback = values.host === '127.0.0.1' || values.host === 'localhost' || values.host === '::1';

  return {
    host: values.host,
    port: values.port,
    dataDir,
    logLevel: values.logLevel,
    registration: values.registration,
    secureCookies: values.secureCookies ?? !loopback,
    store: values['store.url']
      ? { kind: 'postgres', url: values['store.url'] }
      : { kind: 'sqlite', path: path.join(dataDir, 'agentyard.sqlite') },
    sandbox: { kind: values['sandbox.kind'], uid: values['sandbox.uid'], gid: values['sandbox.uid'] },
    model: { upstreamUrl: values['model.upstreamUrl'].replace(/\/+$/, ''), credential },
    agent: {
      claudeBinary,
      defaultModel: values['agent.defaultModel'],
      pauseAfterSeconds: values['agent.pauseAfterSeconds'],
      idleTimeoutSeconds: values['agent.idleTimeoutSeconds'],
      turnTimeoutSeconds: values['agent.turnTimeoutSeconds'],
      maxRetries: values['agent.maxRetries'],
      requestTimeoutMs: values['agent.requestTimeoutMs'],
    },
    limits: { maxMessageBytes: values['limits.maxMessageBytes'] },
  };
}
