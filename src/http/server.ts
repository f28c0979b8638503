import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import fastifyWebsocket from '@fastify/websocket';
import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from '../core/config.ts';
import { installAuthentication } from './auth.ts';
import { installErrorHandlers } from './errors.ts';
import { describeErrorAnswers, swaggerOptions } from './openapi.ts';
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
import type { App, AppServices } from './app.ts';
import { registerWebApp } from './static.ts';
import { TerminalSessions } from './terminal-sessions.ts';
import { LiveConnections } from './live-connections.ts';

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
  describeErrorAnswers(app);
  await app.register(fastifySwagger, swaggerOptions);
  installAuthentication(app, services.accounts);
  installRateLimits(app, services.config.rateLimits, services.rateLimits);
  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 * 1024 } });
  // Revoking a credential ends at once the event streams and terminals it opened.
  const liveConnections = new LiveConnections((principal) => services.accounts.stillValid(principal), services.logger.child({ component: 'live-connections' }));
  app.decorate('liveConnections', liveConnections);
  const stopRevocations = services.accounts.onRevoke((revocation) => liveConnections.revoke(revocation));
  app.addHook('onClose', async () => stopRevocations());
  const terminals = new TerminalSessions(services.conversations, {
    logger: services.logger.child({ component: 'terminal' }),
    maxPerUser: services.config.limits.terminalsPerUser,
    maxPerConversation: services.config.limits.terminalsPerConversation,
  });
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
  registerTerminalRoutes(app, { terminals, liveConnections, conversations: services.conversations, replicaId: services.config.replica.id });
  registerWebApp(app);
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
