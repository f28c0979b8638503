import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { AccountsService } from './accounts/accounts-service.ts';
import { LoginThrottle } from './accounts/login-throttle.ts';
import { AgentCeilings } from './agents/agent-ceilings.ts';
import { AgentsService, builtinDefaultAgent } from './agents/agents-service.ts';
import type { Config } from './core/config.ts';
import { newId } from './core/ids.ts';
import { platformVersion } from './core/version.ts';
import type { Logger } from './core/logger.ts';
import type { BackendCheck, SandboxProvider } from './core/sandbox.ts';
import type { Store } from './core/store.ts';
import { EventBus } from './conversations/event-bus.ts';
import { ConversationsService } from './conversations/conversations-service.ts';
import { SandboxSlots } from './conversations/sandbox-slots.ts';
import { CredentialCipher } from './gateway/credential-cipher.ts';
import { createEgressResolver } from './gateway/egress-resolver.ts';
import { EgressSettings } from './gateway/egress-settings.ts';
import { createGateway, type Gateway } from './gateway/gateway.ts';
import { GrantCleaner } from './gateway/grant-cleaner.ts';
import { UserCredentials } from './gateway/user-credentials.ts';
import type { App } from './http/app.ts';
import { createRateLimitCounter } from './http/rate-limit.ts';
import { buildServer } from './http/server.ts';
import { createLocalProvider } from './sandbox/local/index.ts';
import { createDockerProvider } from './sandbox/docker/index.ts';
import { createStore } from './store/index.ts';
import { lockSqliteDatabase } from './store/sqlite/single-process-lock.ts';
import { ConversationLeases } from './replicas/conversation-leases.ts';
import { DrainSignal } from './replicas/drain-signal.ts';
import { ReplicaDirectory } from './replicas/replica-directory.ts';
import { ReplicaPresence, replicaGone } from './replicas/replica-presence.ts';
import { createPriceTable } from './usage/price-table.ts';
import { QuotasService } from './usage/quotas-service.ts';
import { UsageService } from './usage/usage-service.ts';

/** A running platform: the HTTP server and everything behind it. */
export interface Platform {
  app: App;
  /** http://host:port the server listens on. */
  url: string;
  store: Store;
  sandboxes: SandboxProvider;
  gateway: Gateway;
  accounts: AccountsService;
  quotas: QuotasService;
  credentials: UserCredentials;
  conversations: ConversationsService;
  presence: ReplicaPresence;
  /**
   * SIGTERM: readiness fails, event streams end with a reconnect hint, idle conversations go to other replicas at once
   * and running turns get AGENTYARD_DRAIN_SECONDS to finish. Call close() afterwards.
   */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** The services every entry point needs (serve, create-user, doctor), without the HTTP server. */
export function buildCore(config: Config, logger: Logger): { store: Store; sandboxes: SandboxProvider; accounts: AccountsService } {
  const store = createStore(config.store, logger.child({ component: 'store' }));
  // On PostgreSQL, replicas may share the data directory (SQLite allows one server process).
  const sharedDataDir = config.store.kind === 'postgres';
  // The Docker backend loads its SDK (dockerode) on first use only.
  const sandboxes: SandboxProvider =
    config.sandbox.kind === 'docker'
      ? createDockerProvider({
          dataDir: config.dataDir,
          image: config.sandbox.image,
          runtime: config.sandbox.runtime,
          ...(config.sandbox.dockerHost ? { dockerHost: config.sandbox.dockerHost } : {}),
          poolSize: config.sandbox.poolSize,
          workspaceDiskMb: config.sandbox.workspaceDiskMb,
          sandboxUid: config.sandbox.uid,
          sandboxGid: config.sandbox.gid,
          sharedDataDir,
          // Containers carry their replica's id, so that a replica's start-up sweep leaves the live ones' alone.
          replica: { id: config.replica.id, replicaGone: (id) => replicaGone(store, id, config.replica.leaseSeconds * 1000, config.replica.id) },
          logger: logger.child({ component: 'sandbox' }),
        })
      : createLocalProvider({
          dataDir: config.dataDir,
          claudeBinary: config.agent.claudeBinary,
          workspaceDiskMb: config.sandbox.workspaceDiskMb,
          sandboxUid: config.sandbox.uid,
          sandboxGid: config.sandbox.gid,
          sharedDataDir,
          logger: logger.child({ component: 'sandbox' }),
        });
  const accounts = new AccountsService(store, config.registration, { loginThrottle: new LoginThrottle(config.loginThrottle) });
  return { store, sandboxes, accounts };
}

/** Checks of the binary the agent runs. */
async function checkClaudeBinary(config: Config): Promise<BackendCheck> {
  try {
    await access(config.agent.claudeBinary, constants.X_OK);
    return { name: 'claude-cli', ok: true, detail: config.agent.claudeBinary };
  } catch {
    return {
      name: 'claude-cli',
      ok: false,
      detail: `${config.agent.claudeBinary} is missing or not executable`,
      fix: 'run `npm ci` (it installs the pinned @anthropic-ai/claude-code), or set AGENTYARD_CLAUDE_BINARY',
    };
  }
}

/**
 * What the sandbox backend needs on this host plus the CLI binary, for readiness and doctor. The local backend
 * checks the binary too (it mounts it); its check gives way to this one, so the binary is listed once.
 */
export async function hostChecks(config: Config, sandboxes: SandboxProvider): Promise<BackendCheck[]> {
  const sandboxChecks = await sandboxes.check();
  return [...sandboxChecks.filter((check) => check.name !== 'claude binary'), await checkClaudeBinary(config)];
}

/**
 * The composition root: builds every service from the configuration and starts the server. With `listen: false` the
 * server is made ready but opens no port (e.g. to read its OpenAPI spec).
 */
export async function startPlatform(config: Config, logger: Logger, options: { listen?: boolean } = {}): Promise<Platform> {
  await mkdir(config.dataDir, { recursive: true });
  // SQLite serves one server process: a second one on this data directory stops here, before touching anything.
  const sqliteLock = config.store.kind === 'sqlite' ? await lockSqliteDatabase(config.store.path) : null;
  const { store, sandboxes, accounts } = buildCore(config, logger);
  await store.migrate();

  const prices = createPriceTable(config.prices);
  // On PostgreSQL (replicas) each sandbox session records its replica, so that the others can end it if it stops.
  const replicaQuotas = store.kind === 'postgres' ? { replicaId: config.replica.id, replicaStaleMs: config.replica.leaseSeconds * 1000 } : {};
  const quotas = new QuotasService({ store, prices, defaults: config.quotas, logger: logger.child({ component: 'quotas' }), ...replicaQuotas });
  const usage = new UsageService(store, prices);
  const credentials = new UserCredentials(store, config.secretKey ? new CredentialCipher(config.secretKey) : null, logger.child({ component: 'credentials' }));
  // The gateway reports refusals to the runner, which is built after it.
  let refusals: ConversationsService | null = null;
  const gateway = createGateway({
    upstreamUrl: config.model.upstreamUrl,
    credential: config.model.credential,
    socketDir: path.join(config.dataDir, 'run', 'gateway'),
    logger: logger.child({ component: 'gateway' }),
    maxBodyBytes: config.gateway.maxBodyBytes,
    maxStreamsPerSandbox: config.gateway.maxStreamsPerSandbox,
    stallTimeoutMs: config.gateway.stallTimeoutSeconds * 1000,
    maxConnectionsPerSandbox: config.gateway.maxConnectionsPerSandbox,
    // Grants are kept in the store by token hash, so that any replica can resolve a sandbox's token.
    grants: { store, replicaId: config.replica.id },
    onUsage: (record) => quotas.record({ id: newId('use'), ...record, createdAt: new Date().toISOString() }),
    credentialFor: (userId) => credentials.credentialFor(userId),
    admit: async (grant) => {
      const refusal = await quotas.checkModelRequest(grant.userId);
      return refusal && { code: 'QUOTA_EXCEEDED', message: refusal.message, details: { quota: refusal.quota, resetsAt: refusal.resetsAt } };
    },
    onRefused: ({ grant, turnId, refusal }) => {
      if (turnId) refusals?.noteRefusal(grant.conversationId, turnId, { code: refusal.code, message: refusal.message });
    },
    egress: {
      resolve: createEgressResolver({ hosts: config.gateway.egressHosts, dnsServers: config.gateway.egressDnsServers }),
      maxConnectionsPerSandbox: config.gateway.egressMaxConnections,
      onEgress: (event) => {
        store.recordEgress({ id: newId('egr'), ...event, createdAt: new Date().toISOString() }).catch((error: unknown) => {
          logger.error({ err: error, conversationId: event.conversationId }, 'could not record an egress connection');
        });
      },
    },
  });
  const leaseMs = config.replica.leaseSeconds * 1000;
  const presence = new ReplicaPresence(store, { id: config.replica.id, version: platformVersion, url: config.replica.url }, leaseMs, logger.child({ component: 'replicas' }));
  // SQLite serves one process (its lock): no heartbeat, lease renewal or shared chores, whose writes would only wait on it.
  const singleProcess = store.kind === 'sqlite';
  await presence.start({ heartbeat: !singleProcess });
  const grantCleaner = new GrantCleaner({ store, replicaId: presence.id, replicaGoneAfterMs: Math.max(5 * 60_000, 4 * leaseMs), logger: logger.child({ component: 'gateway' }) });
  if (singleProcess) await grantCleaner.runOnce().catch((error: unknown) => logger.warn({ err: error }, 'gateway grant cleaning failed'));
  else grantCleaner.start();
  // Sandbox sessions left open by this replica's previous process (on SQLite: by the previous server) and by replicas
  // that stopped are ended; a live replica's stay (docs/decisions/0014-shared-limits.md).
  await quotas.recover();
  const leases = new ConversationLeases(store, config.replica.id, leaseMs, logger.child({ component: 'replicas' }), singleProcess);
  const drainSignal = new DrainSignal();
  const ceilings = new AgentCeilings(store, config.agentCeilings, logger.child({ component: 'agents' }));
  await ceilings.load();
  const agents = new AgentsService(store, ceilings, sandboxes.runtimes);
  await agents.installBuiltins([builtinDefaultAgent({ model: config.agent.defaultModel, turnTimeoutSeconds: config.agent.turnTimeoutSeconds })]);
  const conversations = new ConversationsService({
    prices,
    store,
    sandboxes,
    gateway,
    agents,
    bus: new EventBus(store, logger.child({ component: 'events' })),
    presence,
    leases,
    singleProcess,
    logger: logger.child({ component: 'runner' }),
    maxMessageBytes: config.limits.maxMessageBytes,
    maxQueued: { perConversation: config.limits.queuedPerConversation, perUser: config.limits.queuedPerUser },
    slots: new SandboxSlots(config.limits.sandboxesPerUser),
    ceilings,
    quotas,
    settings: {
      pauseAfterMs: config.agent.pauseAfterSeconds * 1000,
      idleTimeoutMs: config.agent.idleTimeoutSeconds * 1000,
      maxRetries: config.agent.maxRetries,
      requestTimeoutMs: config.agent.requestTimeoutMs,
      interruptGraceMs: config.agent.interruptGraceSeconds * 1000,
      pidsLimit: 512,
    },
  });
  refusals = conversations;
  await conversations.recover();

  const readiness = async (): Promise<BackendCheck[]> => {
    const storeCheck = await store.ping().then(
      (): BackendCheck => ({ name: 'store', ok: true, detail: config.store.kind }),
      (): BackendCheck => ({ name: 'store', ok: false, detail: `${config.store.kind} is not answering` }),
    );
    const replicaCheck: BackendCheck = drainSignal.draining
      ? { name: 'replica', ok: false, detail: `${presence.id} is shutting down` }
      : { name: 'replica', ok: true, detail: presence.id };
    return [storeCheck, replicaCheck, ...(await hostChecks(config, sandboxes))];
  };

  const egress = new EgressSettings(store, logger.child({ component: 'egress' }));
  // Counted in the store on PostgreSQL, so that a limit holds across replicas; in memory on SQLite (one process).
  const rateLimits = createRateLimitCounter(store, config.rateLimits.windowSeconds, logger.child({ component: 'rate-limits' }));
  const app = await buildServer({ config, accounts, agents, conversations, readiness, logger, quotas, usage, credentials, egress, replicas: new ReplicaDirectory(store, presence), drainSignal, rateLimits });
  if (options.listen === false) await app.ready();
  else await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  // Other replicas reach this one here unless AGENTYARD_REPLICA_URL says otherwise (a wildcard address is this host).
  const reachableHost = config.host === '0.0.0.0' || config.host === '::' ? hostname() : host;
  if (options.listen !== false) await presence.setUrl(`http://${reachableHost}:${port}`);
  logger.info({ url: `http://${host}:${port}`, store: config.store.kind, sandbox: sandboxes.kind }, 'agentyard is listening');

  return {
    app,
    url: `http://${host}:${port}`,
    store,
    sandboxes,
    gateway,
    accounts,
    quotas,
    credentials,
    conversations,
    presence,
    async drain() {
      await presence.drain();
      drainSignal.start();
      logger.info({ replicaId: presence.id, graceSeconds: config.replica.drainSeconds }, 'draining');
      await conversations.drain(config.replica.drainSeconds * 1000);
    },
    async close() {
      drainSignal.start();
      await app.close();
      await conversations.close();
      await presence.stop();
      await sandboxes.close();
      await gateway.closeAll();
      await grantCleaner.stop();
      await store.close();
      sqliteLock?.release();
    },
  };
}
