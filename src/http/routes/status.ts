import { z } from 'zod';
import { platformVersion } from '../../core/version.ts';
import { defaultPrices, modelChoices } from '../../usage/price-table.ts';
import { requireUser } from '../auth.ts';
import type { App, AppServices } from '../app.ts';
import { maxUploadBytes } from './files.ts';

/** What the web app needs to know about this installation before and after sign-in; never a secret. */
export function registerStatusRoutes(app: App, { config, agents, accounts }: AppServices): void {
  app.get(
    '/api/status',
    {
      schema: {
        tags: ['operations'],
        summary: 'This installation’s settings that clients adapt to',
        description:
          '`registration` is open, invite or closed. `modelCredential.configured` (signed-in callers only) says whether the platform holds a model ' +
          'credential (ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN); the credential itself is never returned. `hasAccounts` says only whether ' +
          'any account exists yet, so that the sign-in page of a new server opens on creating the first one.',
        response: {
          200: z.object({
            version: z.string(),
            registration: z.enum(['open', 'invite', 'closed']),
            hasAccounts: z.boolean(),
            modelCredential: z.object({ configured: z.boolean(), kind: z.enum(['api-key', 'oauth-token']).nullable() }).nullable(),
            limits: z.object({ maxMessageBytes: z.number().int(), maxUploadBytes: z.number().int() }),
            sandbox: z.object({
              backend: z.enum(['local', 'docker']),
              runtimes: z.array(z.enum(['runc', 'runsc'])).describe('what an agent’s sandboxRuntime may name besides default'),
              defaultRuntime: z.enum(['runc', 'runsc']).nullable(),
            }),
          }),
        },
      },
    },
    async (request) => {
      const credential = config.model.credential;
      return {
        version: platformVersion,
        registration: config.registration,
        hasAccounts: await accounts.hasAnyAccount(),
        modelCredential: request.principal ? { configured: credential !== null, kind: credential?.kind ?? null } : null,
        limits: { maxMessageBytes: config.limits.maxMessageBytes, maxUploadBytes },
        sandbox: {
          backend: config.sandbox.kind,
          runtimes: [...agents.sandboxRuntimes],
          defaultRuntime: config.sandbox.kind === 'docker' ? config.sandbox.runtime : null,
        },
      };
    },
  );

  const price = z.object({ input: z.number(), output: z.number(), cacheWrite: z.number(), cacheRead: z.number() }).describe('USD per million tokens');
  app.get(
    '/api/models',
    {
      schema: {
        tags: ['agents'],
        summary: 'The models to choose from for an agent, with their prices',
        description:
          'The default model (AGENTYARD_DEFAULT_MODEL) first, then the model ids of the price table (AGENTYARD_MODEL_PRICES or the built-in one). ' +
          'An agent may still name any other model id.',
        response: {
          200: z.object({ defaultModel: z.string(), models: z.array(z.object({ id: z.string(), price: price.nullable() })) }),
        },
      },
    },
    async (request) => {
      requireUser(request);
      return { defaultModel: config.agent.defaultModel, models: modelChoices(config.prices ?? defaultPrices, config.agent.defaultModel) };
    },
  );
}
