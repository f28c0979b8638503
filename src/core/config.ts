import { hostname } from 'node:os';
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
  'sandbox.image': 'AGENTYARD_SANDBOX_IMAGE',
  'sandbox.dockerRuntime': 'AGENTYARD_DOCKER_RUNTIME',
  'sandbox.dockerHost': 'DOCKER_HOST',
  'sandbox.poolSize': 'AGENTYARD_SANDBOX_POOL_SIZE',
  'sandbox.workspaceDiskMb': 'AGENTYARD_WORKSPACE_DISK_MB',
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
  'agent.interruptGraceSeconds': 'AGENTYARD_INTERRUPT_GRACE_SECONDS',
  'limits.maxMessageBytes': 'AGENTYARD_MAX_MESSAGE_BYTES',
  'limits.sandboxesPerUser': 'AGENTYARD_MAX_SANDBOXES_PER_USER',
  'limits.queuedPerConversation': 'AGENTYARD_MAX_QUEUED_PER_CONVERSATION',
  'limits.queuedPerUser': 'AGENTYARD_MAX_QUEUED_PER_USER',
  'limits.terminalsPerUser': 'AGENTYARD_TERMINALS_PER_USER',
  'limits.terminalsPerConversation': 'AGENTYARD_TERMINALS_PER_CONVERSATION',
  'loginThrottle.freeFailures': 'AGENTYARD_LOGIN_FREE_FAILURES',
  'loginThrottle.maxDelaySeconds': 'AGENTYARD_LOGIN_MAX_DELAY_SECONDS',
  'loginThrottle.accountFailures': 'AGENTYARD_LOGIN_ACCOUNT_FAILURES',
  'loginThrottle.accountMaxDelaySeconds': 'AGENTYARD_LOGIN_ACCOUNT_MAX_DELAY_SECONDS',
  'loginThrottle.maxKeys': 'AGENTYARD_LOGIN_TRACKED_KEYS',
  'agentCeilings.memoryMb': 'AGENTYARD_AGENT_MAX_MEMORY_MB',
  'agentCeilings.cpus': 'AGENTYARD_AGENT_MAX_CPUS',
  'agentCeilings.turnTimeoutSeconds': 'AGENTYARD_AGENT_MAX_TURN_SECONDS',
  // The gateway (issue 5): secrets at rest, prices, quotas, rate limits, abuse limits and egress.
  secretKey: 'AGENTYARD_SECRET_KEY',
  'usage.prices': 'AGENTYARD_MODEL_PRICES',
  'quotas.tokensPerDay': 'AGENTYARD_QUOTA_TOKENS_PER_DAY',
  'quotas.tokensPerMonth': 'AGENTYARD_QUOTA_TOKENS_PER_MONTH',
  'quotas.costPerDayUsd': 'AGENTYARD_QUOTA_COST_PER_DAY_USD',
  'quotas.costPerMonthUsd': 'AGENTYARD_QUOTA_COST_PER_MONTH_USD',
  'quotas.concurrentSandboxes': 'AGENTYARD_QUOTA_CONCURRENT_SANDBOXES',
  'quotas.sandboxHoursPerMonth': 'AGENTYARD_QUOTA_SANDBOX_HOURS_PER_MONTH',
  'rateLimits.windowSeconds': 'AGENTYARD_RATE_LIMIT_WINDOW_SECONDS',
  'rateLimits.perUser': 'AGENTYARD_RATE_LIMIT_PER_USER',
  'rateLimits.perToken': 'AGENTYARD_RATE_LIMIT_PER_TOKEN',
  'rateLimits.anonymous': 'AGENTYARD_RATE_LIMIT_ANONYMOUS',
  'gateway.maxBodyBytes': 'AGENTYARD_GATEWAY_MAX_BODY_BYTES',
  'gateway.maxStreamsPerSandbox': 'AGENTYARD_GATEWAY_MAX_STREAMS',
  'gateway.stallTimeoutSeconds': 'AGENTYARD_GATEWAY_STALL_TIMEOUT_SECONDS',
  'gateway.maxConnectionsPerSandbox': 'AGENTYARD_GATEWAY_MAX_CONNECTIONS',
  'gateway.egressMaxConnections': 'AGENTYARD_EGRESS_MAX_CONNECTIONS',
  'gateway.egressHosts': 'AGENTYARD_EGRESS_HOSTS',
  'gateway.egressDnsServers': 'AGENTYARD_EGRESS_DNS_SERVERS',
  'files.pageSize': 'AGENTYARD_FILES_PAGE_SIZE',
  'files.maxPageSize': 'AGENTYARD_FILES_MAX_PAGE_SIZE',
  'files.archiveMaxDepth': 'AGENTYARD_ARCHIVE_MAX_DEPTH',
  'files.archiveMaxEntries': 'AGENTYARD_ARCHIVE_MAX_ENTRIES',
  'files.archiveMaxBytes': 'AGENTYARD_ARCHIVE_MAX_BYTES',
  'events.streamsPerUser': 'AGENTYARD_EVENT_STREAMS_PER_USER',
  'events.streamsPerConversation': 'AGENTYARD_EVENT_STREAMS_PER_CONVERSATION',
  'events.stallSeconds': 'AGENTYARD_EVENT_STREAM_STALL_SECONDS',
  // Several replicas on one PostgreSQL (docs/decisions/0013-replicas.md).
  'replica.id': 'AGENTYARD_REPLICA_ID',
  'replica.url': 'AGENTYARD_REPLICA_URL',
  'replica.leaseSeconds': 'AGENTYARD_LEASE_SECONDS',
  'replica.drainSeconds': 'AGENTYARD_DRAIN_SECONDS',
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
/** A quota: a non-negative number, or `unlimited` (the default). */
const quotaLimit = z
  .union([z.literal('unlimited'), z.coerce.number().min(0)], { error: 'must be a number or "unlimited"' })
  .default('unlimited')
  .transform((value) => (value === 'unlimited' ? null : value));

/** `name=address,name=address` → { name: [addresses] } (names lowercased). */
function parseHosts(value: string): Record<string, string[]> {
  const hosts: Record<string, string[]> = {};
  for (const pair of value.split(',')) {
    const [name, address] = pair.trim().split('=');
    if (!name || !address) continue;
    (hosts[name.toLowerCase().replace(/\.$/, '')] ??= []).push(address);
  }
  return hosts;
}
const booleanish = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

const rawSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  dataDir: z.string().min(1).default('./data'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  registration: z.enum(['open', 'invite', 'closed']).default('open'),
  secureCookies: booleanish.optional(),
  'store.url': z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' }).optional(),
  'sandbox.kind': z.enum(['local', 'docker'], { error: 'must be "local" or "docker" (kubernetes is not available yet)' }).default('local'),
  'sandbox.uid': z.coerce.number().int().min(1).max(2 ** 31).default(64000),
  'sandbox.image': z.string().min(1).default('agentyard-sandbox:latest'),
  'sandbox.dockerRuntime': z.enum(['runc', 'runsc']).default('runc'),
  'sandbox.dockerHost': z.string().min(1).optional(),
  'sandbox.poolSize': z.coerce.number().int().min(0).max(64).default(2),
  'sandbox.workspaceDiskMb': z.coerce
    .number()
    .int()
    .refine((value) => value === 0 || value >= 16, 'must be 0 (no limit) or at least 16 MiB')
    .default(10_240),
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
  'agent.interruptGraceSeconds': z.coerce.number().int().min(1).max(300).default(5),
  'limits.maxMessageBytes': positiveInt.default(100_000),
  'limits.sandboxesPerUser': positiveInt.default(3),
  'limits.queuedPerConversation': positiveInt.default(10),
  'limits.queuedPerUser': positiveInt.default(30),
  'limits.terminalsPerUser': positiveInt.default(8),
  'limits.terminalsPerConversation': positiveInt.default(4),
  'replica.id': z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash and underscore, at most 64').optional(),
  'replica.url': z.string().url().optional(),
  'replica.leaseSeconds': z.coerce.number().int().min(2).max(600).default(15),
  'replica.drainSeconds': z.coerce.number().int().min(0).max(3600).default(30),
  'loginThrottle.freeFailures': positiveInt.max(1000).default(5),
  'loginThrottle.maxDelaySeconds': positiveInt.max(24 * 3600).default(900),
  'loginThrottle.accountFailures': positiveInt.max(100_000).default(50),
  'loginThrottle.accountMaxDelaySeconds': z.coerce.number().int().min(5).max(3600).default(60),
  'loginThrottle.maxKeys': z.coerce.number().int().min(100).max(10_000_000).default(10_000),
  // The ceilings' own bounds are those of an agent's limits (src/agents/agent-schema.ts).
  'agentCeilings.memoryMb': z.coerce.number().int().min(128).max(65536).default(4096),
  'agentCeilings.cpus': z.coerce.number().min(0.1).max(64).default(4),
  'agentCeilings.turnTimeoutSeconds': z.coerce.number().int().min(5).max(24 * 3600).default(3600),
  secretKey: z
    .string()
    .refine((value) => secretKeyBytes(value) !== null, 'must be 32 random bytes as 64 hex digits or base64 (openssl rand -base64 32)')
    .optional(),
  'usage.prices': z
    .string()
    .transform((value, context) => {
      try {
        return priceTableSchema.parse(JSON.parse(value));
      } catch {
        context.addIssue({ code: 'custom', message: 'must be JSON like {"claude-sonnet-*":{"input":3,"output":15,"cacheWrite":3.75,"cacheRead":0.3}} (USD per million tokens)' });
        return z.NEVER;
      }
    })
    .optional(),
  'quotas.tokensPerDay': quotaLimit,
  'quotas.tokensPerMonth': quotaLimit,
  'quotas.costPerDayUsd': quotaLimit,
  'quotas.costPerMonthUsd': quotaLimit,
  'quotas.concurrentSandboxes': quotaLimit,
  'quotas.sandboxHoursPerMonth': quotaLimit,
  'rateLimits.windowSeconds': positiveInt.default(60),
  'rateLimits.perUser': z.coerce.number().int().min(0).default(600),
  'rateLimits.perToken': z.coerce.number().int().min(0).default(300),
  'rateLimits.anonymous': z.coerce.number().int().min(0).default(120),
  'gateway.maxBodyBytes': positiveInt.default(32 * 1024 * 1024),
  'gateway.maxStreamsPerSandbox': positiveInt.default(8),
  'gateway.stallTimeoutSeconds': positiveInt.default(60),
  'gateway.maxConnectionsPerSandbox': positiveInt.default(128),
  'gateway.egressMaxConnections': positiveInt.default(32),
  'gateway.egressHosts': z
    .string()
    .regex(/^\s*[^=,\s]+=[0-9a-fA-F.:]+(\s*,\s*[^=,\s]+=[0-9a-fA-F.:]+)*\s*$/, 'must be name=address pairs separated by commas')
    .optional(),
  'gateway.egressDnsServers': z.string().min(1).optional(),
  'files.pageSize': positiveInt.max(100_000).default(500),
  'files.maxPageSize': positiveInt.max(100_000).default(2000),
  'files.archiveMaxDepth': positiveInt.max(4096).default(64),
  'files.archiveMaxEntries': positiveInt.default(20_000),
  'files.archiveMaxBytes': positiveInt.default(512 * 1024 * 1024),
  'events.streamsPerUser': positiveInt.default(32),
  'events.streamsPerConversation': positiveInt.default(16),
  'events.stallSeconds': positiveInt.default(30),
});

export type ModelCredential = { kind: 'api-key'; value: string } | { kind: 'oauth-token'; value: string };

/** A model's price, USD per million tokens of each kind. */
export interface ModelPrice {
  input: number;
  output: number;
  cacheWrite: number;
  cacheRead: number;
}

const priceTableSchema = z.record(
  z.string().min(1),
  z.object({ input: z.number().min(0), output: z.number().min(0), cacheWrite: z.number().min(0), cacheRead: z.number().min(0) }),
);

/** The secret key as 32 bytes, from 64 hex digits or base64; null when it is neither. */
export function secretKeyBytes(value: string): Buffer | null {
  const trimmed = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) {
    const bytes = Buffer.from(trimmed, 'base64');
    if (bytes.length === 32) return bytes;
  }
  return null;
}

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  logLevel: string;
  registration: 'open' | 'invite' | 'closed';
  /** Set the Secure flag on the session cookie (default: when not bound to loopback). */
  secureCookies: boolean;
  store: { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };
  sandbox:
    | {
        kind: 'local';
        uid: number;
        gid: number;
        /** Size limit of each workspace, MiB (a loop-mounted ext4 image); 0: none. */
        workspaceDiskMb: number;
      }
    | {
        kind: 'docker';
        uid: number;
        gid: number;
        /** The sandbox image (build it with `npm run sandbox-image`). */
        image: string;
        runtime: 'runc' | 'runsc';
        /** DOCKER_HOST; the default socket when unset. */
        dockerHost: string | undefined;
        /** Warm runc containers kept per image and limits. */
        poolSize: number;
        /** Size limit of each workspace, MiB (a loop-mounted ext4 image); 0: none. */
        workspaceDiskMb: number;
      };
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
    /** How long the CLI gets to honour an interrupt (a stop, a deadline) before it is killed. */
    interruptGraceSeconds: number;
  };
  limits: {
    maxMessageBytes: number;
    /** Sandboxes one user runs at once; at the cap an idle one is stopped to make room. */
    sandboxesPerUser: number;
    /** Messages waiting behind a running turn, per conversation and per user. */
    queuedPerConversation: number;
    queuedPerUser: number;
    /** Terminals (shells) open at once, per user and per conversation. */
    terminalsPerUser: number;
    terminalsPerConversation: number;
  };
  /** Failed sign-ins: per account and address, then per account from all addresses (src/accounts/login-throttle.ts). */
  loginThrottle: { freeFailures: number; maxDelaySeconds: number; accountFailures: number; accountMaxDelaySeconds: number; maxKeys: number };
  /** The highest limits an agent may have until an administrator changes them (GET/PUT /api/admin/agent-limits). */
  agentCeilings: { memoryMb: number; cpus: number; turnTimeoutSeconds: number };
  /** Encrypts users' own model credentials at rest (AES-256-GCM); null: users cannot store one. */
  secretKey: Buffer | null;
  /** Model prices by model id or `prefix*` pattern; null: the built-in table (src/usage/price-table.ts). */
  prices: Record<string, ModelPrice> | null;
  /** The quota of every user without an administrator's override; null: unlimited. */
  quotas: { tokensPerDay: number | null; tokensPerMonth: number | null; costPerDayUsd: number | null; costPerMonthUsd: number | null; concurrentSandboxes: number | null; sandboxHoursPerMonth: number | null };
  /** Requests per window at the API edge; 0 turns a limit off. Anonymous requests are counted per client address. */
  rateLimits: { windowSeconds: number; perUser: number; perToken: number; anonymous: number };
  gateway: {
    maxBodyBytes: number;
    /** Model requests in flight at once from one sandbox. */
    maxStreamsPerSandbox: number;
    /** A sandbox that does not read its answer for this long is cut off. */
    stallTimeoutSeconds: number;
    /** Connections one sandbox may hold open on its gateway socket at once (model requests, keep-alives, tunnels). */
    maxConnectionsPerSandbox: number;
    /** Egress connections open at once from one sandbox. */
    egressMaxConnections: number;
    /** Fixed name → addresses the egress proxy resolves before DNS (like /etc/hosts). */
    egressHosts: Record<string, string[]>;
    /** DNS servers (ip or ip:port) the egress proxy asks; empty: the system resolver. */
    egressDnsServers: string[];
  };
  /** Workspace files: listing pages (the default, and the most a client may ask for), and what one zip may hold. */
  files: { pageSize: number; maxPageSize: number; archiveMaxDepth: number; archiveMaxEntries: number; archiveMaxBytes: number };
  /** Conversation event streams (SSE): how many may be open at once, and when a client that stopped reading is cut off. */
  events: { streamsPerUser: number; streamsPerConversation: number; stallSeconds: number };
  /**
   * This process among the platform's replicas: its id (default: host name and process id), the address other
   * replicas reach it at (null: derived from where it listens), how long a conversation's lease lasts without renewal,
   * and how long running turns get to finish on SIGTERM.
   */
  replica: { id: string; url: string | null; leaseSeconds: number; drainSeconds: number };
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
    sandbox:
      values['sandbox.kind'] === 'docker'
        ? {
            kind: 'docker',
            uid: values['sandbox.uid'],
            gid: values['sandbox.uid'],
            image: values['sandbox.image'],
            runtime: values['sandbox.dockerRuntime'],
            dockerHost: values['sandbox.dockerHost'],
            poolSize: values['sandbox.poolSize'],
            workspaceDiskMb: values['sandbox.workspaceDiskMb'],
          }
        : { kind: 'local', uid: values['sandbox.uid'], gid: values['sandbox.uid'], workspaceDiskMb: values['sandbox.workspaceDiskMb'] },
    model: { upstreamUrl: values['model.upstreamUrl'].replace(/\/+$/, ''), credential },
    agent: {
      claudeBinary,
      defaultModel: values['agent.defaultModel'],
      pauseAfterSeconds: values['agent.pauseAfterSeconds'],
      idleTimeoutSeconds: values['agent.idleTimeoutSeconds'],
      turnTimeoutSeconds: values['agent.turnTimeoutSeconds'],
      maxRetries: values['agent.maxRetries'],
      requestTimeoutMs: values['agent.requestTimeoutMs'],
      interruptGraceSeconds: values['agent.interruptGraceSeconds'],
    },
    limits: {
      maxMessageBytes: values['limits.maxMessageBytes'],
      sandboxesPerUser: values['limits.sandboxesPerUser'],
      queuedPerConversation: values['limits.queuedPerConversation'],
      queuedPerUser: values['limits.queuedPerUser'],
      terminalsPerUser: values['limits.terminalsPerUser'],
      terminalsPerConversation: values['limits.terminalsPerConversation'],
    },
    loginThrottle: {
      freeFailures: values['loginThrottle.freeFailures'],
      maxDelaySeconds: values['loginThrottle.maxDelaySeconds'],
      accountFailures: values['loginThrottle.accountFailures'],
      accountMaxDelaySeconds: values['loginThrottle.accountMaxDelaySeconds'],
      maxKeys: values['loginThrottle.maxKeys'],
    },
    agentCeilings: {
      memoryMb: values['agentCeilings.memoryMb'],
      cpus: values['agentCeilings.cpus'],
      turnTimeoutSeconds: values['agentCeilings.turnTimeoutSeconds'],
    },
    secretKey: values.secretKey === undefined ? null : secretKeyBytes(values.secretKey),
    prices: values['usage.prices'] ?? null,
    quotas: {
      tokensPerDay: values['quotas.tokensPerDay'],
      tokensPerMonth: values['quotas.tokensPerMonth'],
      costPerDayUsd: values['quotas.costPerDayUsd'],
      costPerMonthUsd: values['quotas.costPerMonthUsd'],
      concurrentSandboxes: values['quotas.concurrentSandboxes'],
      sandboxHoursPerMonth: values['quotas.sandboxHoursPerMonth'],
    },
    rateLimits: {
      windowSeconds: values['rateLimits.windowSeconds'],
      perUser: values['rateLimits.perUser'],
      perToken: values['rateLimits.perToken'],
      anonymous: values['rateLimits.anonymous'],
    },
    gateway: {
      maxBodyBytes: values['gateway.maxBodyBytes'],
      maxStreamsPerSandbox: values['gateway.maxStreamsPerSandbox'],
      stallTimeoutSeconds: values['gateway.stallTimeoutSeconds'],
      maxConnectionsPerSandbox: values['gateway.maxConnectionsPerSandbox'],
      egressMaxConnections: values['gateway.egressMaxConnections'],
      egressHosts: parseHosts(values['gateway.egressHosts'] ?? ''),
      egressDnsServers: (values['gateway.egressDnsServers'] ?? '').split(',').map((server) => server.trim()).filter((server) => server !== ''),
    },
    files: {
      pageSize: Math.min(values['files.pageSize'], values['files.maxPageSize']),
      maxPageSize: values['files.maxPageSize'],
      archiveMaxDepth: values['files.archiveMaxDepth'],
      archiveMaxEntries: values['files.archiveMaxEntries'],
      archiveMaxBytes: values['files.archiveMaxBytes'],
    },
    events: {
      streamsPerUser: values['events.streamsPerUser'],
      streamsPerConversation: values['events.streamsPerConversation'],
      stallSeconds: values['events.stallSeconds'],
    },
    replica: {
      id: values['replica.id'] ?? `${hostname()}-${process.pid}`,
      url: values['replica.url']?.replace(/\/+$/, '') ?? null,
      leaseSeconds: values['replica.leaseSeconds'],
      drainSeconds: values['replica.drainSeconds'],
    },
  };
}
