import path from 'node:path';
import { z } from 'zod';
import { requireUser } from '../auth.ts';
import { errorResponses, idParams } from '../schemas.ts';
import type { App, AppServices } from '../server.ts';

const entrySchema = z.object({
  name: z.string(),
  type: z.enum(['file', 'directory', 'symlink', 'other']),
  size: z.number(),
  modifiedAt: z.string(),
});
const workspacePath = z.string().max(4096);

/** A filename for Content-Disposition that cannot break the header (the full name goes in filename*). */
function contentDisposition(file: string): string {
  const name = path.posix.basename(file);
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export function registerFileRoutes(app: App, { conversations }: AppServices): void {
  app.get(
    '/api/conversations/:id/files',
    {
      schema: {
        tags: ['files'],
        summary: 'List a directory of the conversation’s workspace',
        description: '`path` is relative to the workspace root (the root when absent); it can never leave the workspace.',
        params: idParams,
        querystring: z.object({ path: workspacePath.default('') }),
        response: { 200: z.object({ path: z.string(), entries: z.array(entrySchema) }), ...errorResponses },
      },
    },
    async (request) => ({
      path: request.query.path,
      entries: await conversations.listFiles(requireUser(request), request.params.id, request.query.path),
    }),
  );

  app.get(
    '/api/conversations/:id/files/content',
    {
      schema: {
        tags: ['files'],
        summary: 'A file’s bytes',
        params: idParams,
        querystring: z.object({ path: workspacePath.min(1), download: z.enum(['1', 'true']).optional() }),
        response: { 200: z.any().describe('the file (application/octet-stream)'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const bytes = await conversations.readFile(requireUser(request), request.params.id, request.query.path);
      void reply.header('content-type', 'application/octet-stream').header('x-content-type-options', 'nosniff');
      if (request.query.download) void reply.header('content-disposition', contentDisposition(request.query.path));
      return reply.send(bytes);
    },
  );
}
