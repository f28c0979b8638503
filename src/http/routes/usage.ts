import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { forbidden, notFound } from '../../core/errors.ts';
import { usageCsv, type UsageReport } from '../../usage/usage-service.ts';
import { requireAdmin, requireUser } from '../auth.ts';
import type { App, AppServices } from '../app.ts';

const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a day, YYYY-MM-DD');

const totalsFields = {
  requests: z.number().int(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cacheCreationInputTokens: z.number().int().describe('cache write tokens'),
  cacheReadInputTokens: z.number().int(),
  totalTokens: z.number().int(),
  costUsd: z.number().describe('estimated from the configured price table'),
};

const reportSchema = z.object({
  from: z.string(),
  to: z.string(),
  userId: z.string().nullable(),
  totals: z.object(totalsFields),
  rows: z.array(
    z.object({ day: z.string(), userId: z.string().optional(), agentId: z.string().nullable(), agentName: z.string().nullable(), ...totalsFields }),
  ),
  users: z.array(z.object({ userId: z.string(), email: z.string().nullable(), ...totalsFields })).optional(),
});

const query = z.object({
  from: day.optional().describe('first day (UTC, inclusive); default: the first of this month'),
  to: day.optional().describe('last day (UTC, inclusive); default: today'),
  format: z.enum(['json', 'csv']).default('json'),
});

function send(reply: FastifyReply, report: UsageReport, format: 'json' | 'csv'): UsageReport | FastifyReply {
  if (format === 'json') return report;
  const who = report.userId ?? 'all-users';
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="usage-${who}-${report.from}-${report.to}.csv"`)
    .send(usageCsv(report));
}

const reportAnswer = {
  description: 'The report; with ?format=csv its rows as CSV',
  content: { 'application/json': { schema: reportSchema }, 'text/csv': { schema: z.string() } },
};

export function registerUsageRoutes(app: App, { usage, accounts }: AppServices): void {
  app.get(
    '/api/usage',
    {
      schema: {
        tags: ['usage'],
        summary: 'Your model usage: totals, and rows by day and agent with tokens by kind and estimated cost',
        description: 'An administrator may pass ?userId= to see another user. ?format=csv answers the rows as CSV.',
        querystring: query.extend({ userId: z.string().max(100).optional() }),
        response: { 200: reportAnswer },
      },
    },
    async (request, reply) => {
      const user = requireUser(request);
      const { userId = user.id, from, to, format } = request.query;
      if (userId !== user.id) {
        if (user.role !== 'admin') throw forbidden('only administrators can see another user’s usage');
        if (!(await accounts.listUsers()).some((candidate) => candidate.id === userId)) throw notFound('user');
      }
      return send(reply, await usage.report({ userId, from, to }), format);
    },
  );

  app.get(
    '/api/admin/usage',
    {
      schema: {
        tags: ['admin', 'usage'],
        summary: 'Every user’s model usage: totals per user, and rows by user, day and agent',
        querystring: query,
        response: { 200: reportAnswer },
      },
    },
    async (request, reply) => {
      requireAdmin(request);
      const { from, to, format } = request.query;
      return send(reply, await usage.report({ userId: null, from, to }), format);
    },
  );
}
