import { z } from 'zod';
import type { App, AppServices } from '../app.ts';

const checkSchema = z.object({ name: z.string(), ok: z.boolean(), detail: z.string(), fix: z.string().optional() });

export function registerHealthRoutes(app: App, { readiness }: AppServices): void {
  app.get('/healthz', { schema: { tags: ['operations'], summary: 'Liveness', response: { 200: z.object({ status: z.literal('ok') }) } } }, async () => ({
    status: 'ok' as const,
  }));

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: the store, the sandbox backend and the CLI binary',
        response: { 200: z.object({ ready: z.boolean(), checks: z.array(checkSchema) }), 503: z.object({ ready: z.boolean(), checks: z.array(checkSchema) }) },
      },
    },
    async (_request, reply) => {
      const checks = await readiness();
      const ready = checks.every((check) => check.ok);
      return reply.status(ready ? 200 : 503).send({ ready, checks });
    },
  );
}
