import { z } from 'zod';
import type { App, AppServices } from '../server.ts';
import { maxUploadBytes } from './files.ts';

/** What the web app needs to know about this installation before and after sign-in; never a secret. */
export function registerStatusRoutes(app: App, { config, agents }: AppServices): void {
  app.get(
    '/api/status',
    {
      schema: {
        tags: ['operations'],
        summary: 'This installation’s settings that clients adapt to',
        description:
          '`registration` is open, invite or closed. `modelCredential.configured` (signed-in callers only) says whether the platform holds a model ' +
          'credential (ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN); the credential itself is never returned.',
        response: {
          200: z.object({
            version: z.string(),
            registration: z.enum(['open', 'invite', 'closed']),
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
        version: '0.1.0',
        registration: config.registration,
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
}
