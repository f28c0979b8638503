import path from 'node:path';
import { Readable } from 'node:stream';
import { ZipFile } from 'yazl';
import { z } from 'zod';
import { AppError } from '../../core/errors.ts';
import type { WorkspaceFileAccess } from '../../core/sandbox.ts';
import { requireUser } from '../auth.ts';
import { errorResponses, idParams } from '../schemas.ts';
import type { App, AppServices } from '../server.ts';

/** Largest file accepted by an upload (the workspace's own per-file limit is the same). */
export const maxUploadBytes = 16 * 1024 * 1024;
/** What one archive may hold: uncompressed bytes and entries. Bigger workspaces are refused before anything is sent. */
export const maxArchiveBytes = 512 * 1024 * 1024;
export const maxArchiveEntries = 20_000;
/** Files bigger than this cannot be read whole, so an archive leaves them out and says so. */
const maxArchivedFileBytes = maxUploadBytes;

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
        description: 'With `download=1` the answer is an attachment named after the file.',
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

  // Uploads take raw bytes; the parser lives in its own scope so no other route accepts a 16 MiB body.
  void app.register(async (scope: App) => {
    scope.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: maxUploadBytes }, (_request, body, done) => done(null, body));
    scope.put(
      '/api/conversations/:id/files/content',
      {
        bodyLimit: maxUploadBytes,
        schema: {
          tags: ['files'],
          summary: 'Upload a file into the workspace',
          description:
            `The body is the file's bytes (\`content-type: application/octet-stream\`, at most ${maxUploadBytes} bytes). ` +
            '`path` is relative to the workspace root; missing directories are created and an existing file is replaced. ' +
            'Paths that leave the workspace (`..`, absolute paths, symlinks pointing outside) are refused.',
          consumes: ['application/octet-stream'],
          params: idParams,
          querystring: z.object({ path: workspacePath.min(1) }),
          body: z.instanceof(Buffer).describe('the file’s bytes'),
          response: { 201: z.object({ path: z.string(), size: z.number().int() }), ...errorResponses },
        },
      },
      async (request, reply) => {
        const user = requireUser(request);
        const files = await conversations.workspaceFiles(user, request.params.id);
        try {
          await files.write(request.query.path, request.body);
        } catch (error) {
          if (!(error instanceof AppError && error.code === 'NOT_FOUND' && error.message === 'workspace not found')) throw error;
          // A conversation that never ran has no workspace yet: its sandbox creates it, owned by the sandbox user.
          const { detach } = await conversations.attachSandbox(user, request.params.id);
          detach();
          await files.write(request.query.path, request.body);
        }
        return reply.status(201).send({ path: request.query.path, size: request.body.length });
      },
    );
  });

  app.get(
    '/api/conversations/:id/files/archive',
    {
      schema: {
        tags: ['files'],
        summary: 'Download a directory of the workspace (the whole workspace by default) as a zip',
        description:
          `Symlinks are not followed and files over ${maxArchivedFileBytes} bytes are left out; both are listed in ` +
          '`AGENTYARD-SKIPPED.txt` inside the archive and counted in the `x-agentyard-skipped` header. ' +
          `A directory holding more than ${maxArchiveBytes} bytes or ${maxArchiveEntries} entries is refused with 413.`,
        params: idParams,
        querystring: z.object({ path: workspacePath.default('') }),
        response: { 200: z.any().describe('the archive (application/zip)'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const files = await conversations.workspaceFiles(requireUser(request), request.params.id);
      const root = request.query.path.replace(/(.)\/+$/, '$1');
      const plan = await planArchive(files, root);
      const zip = new ZipFile();
      for (const item of plan.items) {
        const name = archiveName(root ? item.path.slice(root.length + 1) : item.path);
        if (item.kind === 'directory') zip.addEmptyDirectory(name, { mtime: item.modifiedAt });
        else {
          // Read only when yazl gets to the entry, so one file at a time is held in memory.
          zip.addReadStreamLazy(name, { mtime: item.modifiedAt, mode: 0o100644 }, (callback) => {
            files.read(item.path).then(
              (bytes) => callback(null, Readable.from([bytes])),
              (error: unknown) => callback(error as Error, undefined as unknown as Readable),
            );
          });
        }
      }
      if (plan.skipped.length > 0) {
        zip.addBuffer(Buffer.from(`These workspace entries are not in this archive:\n\n${plan.skipped.join('\n')}\n`), 'AGENTYARD-SKIPPED.txt');
      }
      zip.end();
      zip.on('error', (error: Error) => {
        request.log.warn({ err: error }, 'workspace archive failed while streaming');
        (zip.outputStream as Readable).destroy(error);
      });
      const base = root && root !== '.' ? path.posix.basename(root) : 'workspace';
      return reply
        .header('content-type', 'application/zip')
        .header('content-disposition', contentDisposition(`${base}.zip`))
        .header('x-agentyard-skipped', String(plan.skipped.length))
        .send(zip.outputStream);
    },
  );
}

interface ArchivePlan {
  items: { kind: 'file' | 'directory'; path: string; modifiedAt: Date }[];
  skipped: string[];
}

/** Walks the directory first, so a workspace over the limits is refused before a byte of the archive is sent. */
async function planArchive(files: WorkspaceFileAccess, root: string): Promise<ArchivePlan> {
  const plan: ArchivePlan = { items: [], skipped: [] };
  let bytes = 0;
  const walk = async (directory: string): Promise<void> => {
    for (const entry of await files.list(directory)) {
      const entryPath = directory ? `${directory}/${entry.name}` : entry.name;
      if (plan.items.length + plan.skipped.length >= maxArchiveEntries) {
        throw new AppError('PAYLOAD_TOO_LARGE', `the directory has more than ${maxArchiveEntries} entries; download a smaller one`);
      }
      const modifiedAt = new Date(entry.modifiedAt);
      if (entry.type === 'directory') {
        plan.items.push({ kind: 'directory', path: entryPath, modifiedAt });
        await walk(entryPath);
      } else if (entry.type === 'file' && entry.size > maxArchivedFileBytes) {
        plan.skipped.push(`${entryPath}  (${entry.size} bytes: larger than ${maxArchivedFileBytes}; download it on its own)`);
      } else if (entry.type === 'file') {
        bytes += entry.size;
        if (bytes > maxArchiveBytes) {
          throw new AppError('PAYLOAD_TOO_LARGE', `the directory holds more than ${maxArchiveBytes} bytes; download a smaller one`);
        }
        plan.items.push({ kind: 'file', path: entryPath, modifiedAt });
      } else {
        plan.skipped.push(`${entryPath}  (${entry.type === 'symlink' ? 'a symlink: not followed' : 'not a regular file'})`);
      }
    }
  };
  await walk(root);
  return plan;
}

/**
 * A zip entry name that no extractor can turn into a path outside the target: yazl reads `\` as a separator
 * and refuses drive letters, and a workspace name may hold both.
 */
function archiveName(relativePath: string): string {
  const name = relativePath
    .split('/')
    .map((segment) => segment.replace(/\\/g, '_'))
    .join('/');
  return /^[a-zA-Z]:/.test(name) ? `_${name}` : name;
}
