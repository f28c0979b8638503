import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { AccountsService } from '../accounts/accounts-service.ts';
import type { AgentsService } from '../agents/agents-service.ts';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import type { BackendCheck } from '../core/sandbox.ts';
import type { ConversationsService } from '../conversations/conversations-service.ts';
import { installAuthentication } from './auth.ts';
import { installErrorHandlers } from './errors.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerAgentRoutes } from './routes/agents.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { registerCompatRoutes } from './routes/compat.ts';
import { registerConversationRoutes } from './routes/conversations.ts';
import { registerEventRoutes } from './routes/events.ts';
import { registerFileRoutes } from './routes/files.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerStatusRoutes } from './routes/status.ts';
import { registerTerminalRoutes } from './routes/terminal.ts';
import { registerTokenRoutes } from './routes/tokens.ts';
import { registerCredentialRoutes } from './routes/credentials.ts';
import { registerEgressRoutes } from './routes/egress.ts';
import { registerQuotaRoutes } from './routes/quotas.ts';
import { registerUsageRoutes } from './routes/usage.ts';
import { installRateLimits } from './rate-limit.ts';
import type { EgressSettings } from '../gateway/egress-settings.ts';
import type { UserCredentials } from '../gateway/user-credentials.ts';
import type { QuotasService } from '../usage/quotas-service.ts';
import type { UsageService } from '../usage/usage-service.ts';
import { registerWebApp } from './static.ts';
import { TerminalSessions } from './terminal-sessions.ts';

/** Everything the routes use, built once by the composition root. */
export interface AppServices {
  config: Config;
  accounts: AccountsService;
  agents: AgentsService;
  conversations: ConversationsService;
  /** Readiness checks: store, sandbox backend, CLI binary. */
  readiness: () => Promise<BackendCheck[]>;
  logger: Logger;
  quotas: QuotasService;
  usage: UsageService;
  credentials: UserCredentials;
  egress: EgressSettings;
}

export type App = FastifyInstance<any, any, any, Logger, ZodTypeProvider>;

/** Request bodies may hold a message plus JSON framing; larger ones are refused before parsing. */
const bodyLimit = (config: Config): number => Math.max(1024 * 1024, config.limits.maxMessageBytes * 2);

export async function buildServer(services: AppServices): Promise<App> {
  const app = Fastify({
    loggerInstance: services.logger,
    genReqId: () => randomUUID(),
    bodyLimit: bodyLimit(services.config),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);
  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Agentyard API', version: '0.1.0', description: 'Run Claude Code agents in isolated sandboxes.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API token from POST /api/tokens' },
          cookie: { type: 'apiKey', in: 'cookie', name: 'agentyard_session' },
        },
      },
      security: [{ bearer: [] }, { cookie: [] }],
    },
    transform: jsonSchemaTransform,
  });
  installAuthentication(app, services.accounts);
  installRateLimits(app, services.config.rateLimits);
  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 * 1024 } });
  const terminals = new TerminalSessions(services.conversations, { logger: services.logger.child({ component: 'terminal' }) });
  app.addHook('onClose', () => terminals.close());

  registerHealthRoutes(app, services);
  registerAuthRoutes(app, services);
  registerTokenRoutes(app, services);
  registerAgentRoutes(app, services);
  registerConversationRoutes(app, services);
  registerEventRoutes(app, services);
  registerFileRoutes(app, services);
  registerCompatRoutes(app, services);
  registerAdminRoutes(app, services);
  registerUsageRoutes(app, services);
  registerQuotaRoutes(app, services);
  registerCredentialRoutes(app, services);
  registerEgressRoutes(app, services);
  registerStatusRoutes(app, services);
  registerTerminalRoutes(app, { terminals });
  registerWebApp(app);
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
