import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { AccountsService } from '../accounts/accounts-service.ts';
import type { AgentsService } from '../agents/agents-service.ts';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import type { BackendCheck } from '../core/sandbox.ts';
import type { ConversationsService } from '../conversations/conversations-service.ts';
import type { EgressSettings } from '../gateway/egress-settings.ts';
import type { UserCredentials } from '../gateway/user-credentials.ts';
import type { QuotasService } from '../usage/quotas-service.ts';
import type { RateLimitCounter } from './rate-limit.ts';
import type { DrainSignal } from '../replicas/drain-signal.ts';
import type { ReplicaDirectory } from '../replicas/replica-directory.ts';
import type { UsageService } from '../usage/usage-service.ts';

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
  /** The platform's replicas (admin listing), and this one's shutdown (src/replicas). */
  replicas: ReplicaDirectory;
  drainSignal: DrainSignal;
  /** Where the API's rate limits are counted (src/http/rate-limit.ts); none: in this process's memory. */
  rateLimits?: RateLimitCounter;
}

export type App = FastifyInstance<any, any, any, Logger, ZodTypeProvider>;
