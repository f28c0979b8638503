import { z } from 'zod';
import { notFound } from '../../core/errors.ts';
import type { QuotaLimits } from '../../core/types.ts';
import { requireAdmin, requireUser } from '../auth.ts';
import type { App, AppServices } from '../app.ts';

const limit = z.number().min(0).nullable();

const limitsFields = {
  tokensPerDay: limit.describe('model tokens of every kind per UTC day'),
  tokensPerMonth: limit.describe('model tokens of every kind per UTC month'),
  costPerDayUsd: limit.describe('estimated cost per UTC day, USD'),
  costPerMonthUsd: limit.describe('estimated cost per UTC month, USD'),
  concurrentSandboxes: limit.describe('sandboxes running at once'),
  sandboxHoursPerMonth: limit.describe('hours of running sandboxes per UTC month'),
};

const limitsSchema = z.object(limitsFields).describe('null: unlimited');
/** An override: a key present replaces the default (null: unlimited); a key absent follows the default. */
const overrideBody = z.object(limitsFields).partial().strict();

const stateSchema = z.object({
  quota: z.enum(['tokensPerDay', 'tokensPerMonth', 'costPerDayUsd', 'costPerMonthUsd', 'concurrentSandboxes', 'sandboxHoursPerMonth']),
  limit: z.number().nullable(),
  used: z.number(),
  resetsAt: z.string().nullable(),
});

const userQuotaSchema = z.object({
  userId: z.string(),
  limits: limitsSchema,
  override: overrideBody.nullable(),
  quotas: z.array(stateSchema),
});

const userParams = z.object({ userId: z.string().min(1).max(100) });

export function registerQuotaRoutes(app: App, { quotas, accounts }: AppServices): void {
  const describeUser = async (userId: string): Promise<z.infer<typeof userQuotaSchema>> => ({
    userId,
    limits: await quotas.limits(userId),
    override: (await quotas.getOverride(userId))?.limits ?? null,
    quotas: await quotas.status(userId),
  });
  const assertUser = async (userId: string): Promise<void> => {
    if (!(await accounts.listUsers()).some((user) => user.id === userId)) throw notFound('user');
  };

  app.get(
    '/api/quota',
    { schema: { tags: ['usage'], summary: 'Your quotas: each limit, what you have used of it and when it resets', response: { 200: userQuotaSchema } } },
    async (request) => describeUser(requireUser(request).id),
  );

  app.get(
    '/api/admin/quotas',
    {
      schema: {
        tags: ['admin'],
        summary: 'The default quota and every user’s override',
        response: { 200: z.object({ default: limitsSchema, overrides: z.array(z.object({ userId: z.string(), limits: overrideBody, updatedAt: z.string() })) }) },
      },
    },
    async (request) => {
      requireAdmin(request);
      return { default: quotas.defaultLimits, overrides: await quotas.listOverrides() };
    },
  );

  app.get(
    '/api/admin/quotas/:userId',
    { schema: { tags: ['admin'], summary: 'A user’s effective quotas and use', params: userParams, response: { 200: userQuotaSchema } } },
    async (request) => {
      requireAdmin(request);
      await assertUser(request.params.userId);
      return describeUser(request.params.userId);
    },
  );

  app.put(
    '/api/admin/quotas/:userId',
    {
      schema: {
        tags: ['admin'],
        summary: 'Set a user’s quota override; it applies to their next turn and model request',
        description: 'Each limit given replaces the default (null: unlimited); limits left out follow the default. The body replaces any earlier override.',
        params: userParams,
        body: overrideBody,
        response: { 200: userQuotaSchema },
      },
    },
    async (request) => {
      requireAdmin(request);
      await assertUser(request.params.userId);
      await quotas.setOverride(request.params.userId, request.body as Partial<QuotaLimits>);
      return describeUser(request.params.userId);
    },
  );

  app.delete(
    '/api/admin/quotas/:userId',
    { schema: { tags: ['admin'], summary: 'Remove a user’s override: the default applies again', params: userParams, response: { 204: z.null() } } },
    async (request, reply) => {
      requireAdmin(request);
      if (!(await quotas.deleteOverride(request.params.userId))) throw notFound('quota override');
      return reply.status(204).send(null);
    },
  );
}
