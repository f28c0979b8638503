import path from 'node:path';
import { Readable } from 'node:stream';
import { ZipFile } from 'yazl';
import { z } from 'zod';
import { AppError } from '../../core/errors.ts';
import { workspaceFileVersion } from '../../core/file-version.ts';
import type { WorkspaceFileAccess } from '../../core/sandbox.ts';
import { requireUser } from '../auth.ts';
import { errorBody, idParams } from '../schemas.ts';
import type { App, AppServices } from '../app.ts';

/** Largest file accepted by an upload, and read by a download (the workspace's own per-file limit is the same). */
export const maxUploadBytes = 16 * 1024 * 1024;
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

/** The ETag of a file's content, as the GET sends it and a PUT's If-Match gives it back. */
const etagOf = (bytes: Uint8Array): string => `"${workspaceFileVersion(bytes)}"`;

/**
 * The versions an If-Match header names (`*`: any existing file). Weak tags never match a write, as HTTP wants;
 * a header naming no tag at all is refused.
 */
function parseIfMatch(header: string | string[] | undefined): readonly string[] | '*' | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value.trim() === '*') return '*';
  const tags = [...value.matchAll(/(W\/)?"([^"]*)"/g)];
  if (tags.length === 0) throw new AppError('BAD_REQUEST', 'If-Match must hold the ETag a GET of the file answered (a quoted string)');
  return tags.filter((tag) => !tag[1]).map((tag) => tag[2]!);
}

export function registerFileRoutes(app: App, { conversations, config }: AppServices): void {
  const bounds = config.files;

  app.get(
    '/api/conversations/:id/files',
    {
      schema: {
        tags: ['files'],
        summary: 'List a directory of the conversation’s workspace, a page at a time',
        description:
          '`path` is relative to the workspace root (the root when absent); it can never leave the workspace. ' +
          `Entries come directories first, then by name, at most \`limit\` (default ${bounds.pageSize}, at most ${bounds.maxPageSize}) ` +
          'per page; pass a page’s `nextCursor` as `cursor` for the next one (null: the last page). A cursor names the last ' +
          'entry, so files added or removed meanwhile never make a page skip or repeat another.',
        params: idParams,
        querystring: z.object({
          path: workspacePath.default(''),
          limit: z.coerce.number().int().min(1).max(bounds.maxPageSize).optional(),
          cursor: z.string().min(3).max(2048).optional(),
        }),
        response: { 200: z.object({ path: z.string(), entries: z.array(entrySchema), nextCursor: z.string().nullable() }) },
      },
    },
    async (request) => {
      const { path: directory, limit, cursor } = request.query;
      const page = await conversations.listFiles(requireUser(request), request.params.id, directory, { limit: limit ?? bounds.pageSize, cursor: cursor ?? null });
      return { path: directory, ...page };
    },
  );

  app.get(
    '/api/conversations/:id/files/content',
    {
      schema: {
        tags: ['files'],
        summary: 'A file’s bytes',
        description:
          `With \`download=1\` the answer is an attachment named after the file. A file over ${maxUploadBytes} bytes, or one that ` +
          'grows past that while it is read, is refused with 413. The `ETag` names this content: send it back as `If-Match` ' +
          'when writing the file, so that a change made meanwhile (by the agent) is not overwritten.',
        params: idParams,
        querystring: z.object({ path: workspacePath.min(1), download: z.enum(['1', 'true']).optional() }),
        response: { 200: z.any().describe('the file (application/octet-stream)') },
      },
    },
    async (request, reply) => {
      const bytes = await conversations.readFile(requireUser(request), request.params.id, request.query.path);
      void reply
        .header('content-type', 'application/octet-stream')
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'no-store')
        .header('etag', etagOf(bytes));
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
            'Paths that leave the workspace (`..`, absolute paths, symlinks pointing outside) are refused. ' +
            'With `If-Match: "<ETag of a GET>"` the file is written only if it is still that content; otherwise 412 ' +
            '`FILE_CHANGED` and nothing is written (also when the file is gone; `If-Match: *` only asks that it exist). ' +
            'The answer’s `ETag` names the content written.',
          consumes: ['application/octet-stream'],
          params: idParams,
          querystring: z.object({ path: workspacePath.min(1) }),
          headers: z.object({ 'if-match': z.string().max(4096).optional() }),
          body: z.instanceof(Buffer).describe('the file’s bytes'),
          response: {
            201: z.object({ path: z.string(), size: z.number().int() }),
            412: { description: 'FILE_CHANGED: the file is no longer the version If-Match names', content: { 'application/json': { schema: errorBody } } },
          },
        },
      },
      async (request, reply) => {
        const user = requireUser(request);
        const ifMatch = parseIfMatch(request.headers['if-match']);
        const files = await conversations.workspaceFiles(user, request.params.id);
        const write = () => files.write(request.query.path, request.body, ifMatch === undefined ? {} : { ifMatch });
        try {
          await write();
        } catch (error) {
          if (!(error instanceof AppError && error.code === 'NOT_FOUND' && error.message === 'workspace not found')) throw error;
          if (ifMatch !== undefined) throw new AppError('FILE_CHANGED', `the file no longer exists; nothing was written: ${request.query.path}`);
          // A conversation that never ran has no workspace yet: its sandbox creates it, owned by the sandbox user.
          const { detach } = await conversations.attachSandbox(user, request.params.id);
          detach();
          await write();
        }
        return reply.status(201).header('etag', etagOf(request.body)).send({ path: request.query.path, size: request.body.length });
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
          `Symlinks are not followed, files over ${maxArchivedFileBytes} bytes are left out, and so are the contents of ` +
          `directories deeper than ${bounds.archiveMaxDepth} levels; all are listed in \`AGENTYARD-SKIPPED.txt\` inside the ` +
          'archive, and those known before the first byte is sent are counted in the `x-agentyard-skipped` header. ' +
          `A directory holding more than ${bounds.archiveMaxBytes} bytes or ${bounds.archiveMaxEntries} entries is refused with 413. ` +
          'Reading stops when the client goes away.',
        params: idParams,
        querystring: z.object({ path: workspacePath.default('') }),
        response: { 200: z.any().describe('the archive (application/zip)') },
      },
    },
    async (request, reply) => {
      const files = await conversations.workspaceFiles(requireUser(request), request.params.id);
      const root = request.query.path.replace(/(.)\/+$/, '$1');
      const clientGone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) clientGone.abort();
      });
      let plan: ArchivePlan;
      try {
        plan = await planArchive(files, root, bounds, clientGone.signal);
      } catch (error) {
        if (!clientGone.signal.aborted) throw error;
        // Nobody is left to answer.
        reply.hijack();
        reply.raw.destroy();
        return;
      }
      const zip = streamArchive(files, root, plan, bounds, clientGone.signal);
      zip.on('error', (error: Error) => {
        if (clientGone.signal.aborted) request.log.debug('workspace archive stopped: the client went away');
        else request.log.warn({ err: error }, 'workspace archive failed while streaming');
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

type ArchiveBounds = AppServices['config']['files'];

interface ArchivePlan {
  items: { kind: 'file' | 'directory'; path: string; modifiedAt: Date }[];
  skipped: string[];
}

/**
 * Walks the directory first, so a workspace over the limits is refused before a byte of the archive is sent.
 * Memory and time are bounded by the entry limit and the depth limit; the walk ends when `signal` aborts.
 */
async function planArchive(files: WorkspaceFileAccess, root: string, bounds: ArchiveBounds, signal: AbortSignal): Promise<ArchivePlan> {
  const plan: ArchivePlan = { items: [], skipped: [] };
  let bytes = 0;
  // `depth` is the level of the directory's entries below the archive's root (its own entries are level 1).
  const walk = async (directory: string, depth: number): Promise<void> => {
    let cursor: string | null = null;
    do {
      signal.throwIfAborted();
      const page = await files.list(directory, { limit: bounds.maxPageSize, cursor });
      for (const entry of page.entries) {
        const entryPath = directory ? `${directory}/${entry.name}` : entry.name;
        if (plan.items.length + plan.skipped.length >= bounds.archiveMaxEntries) {
          throw new AppError('PAYLOAD_TOO_LARGE', `the directory has more than ${bounds.archiveMaxEntries} entries; download a smaller one`);
        }
        const modifiedAt = new Date(entry.modifiedAt);
        if (entry.type === 'directory') {
          plan.items.push({ kind: 'directory', path: entryPath, modifiedAt });
          if (depth < bounds.archiveMaxDepth) await walk(entryPath, depth + 1);
          else plan.skipped.push(`${entryPath}/  (deeper than ${bounds.archiveMaxDepth} levels: its contents are left out; download it on its own)`);
        } else if (entry.type === 'file' && entry.size > maxArchivedFileBytes) {
          plan.skipped.push(`${entryPath}  (${entry.size} bytes: larger than ${maxArchivedFileBytes}; download it on its own)`);
        } else if (entry.type === 'file') {
          bytes += entry.size;
          if (bytes > bounds.archiveMaxBytes) {
            throw new AppError('PAYLOAD_TOO_LARGE', `the directory holds more than ${bounds.archiveMaxBytes} bytes; download a smaller one`);
          }
          plan.items.push({ kind: 'file', path: entryPath, modifiedAt });
        } else {
          plan.skipped.push(`${entryPath}  (${entry.type === 'symlink' ? 'a symlink: not followed' : 'not a regular file'})`);
        }
      }
      cursor = page.nextCursor;
    } while (cursor !== null);
  };
  await walk(root, 1);
  return plan;
}

/**
 * The zip of a planned directory, read one file at a time as the client takes it. A file that grew past the per-file
 * limit or past what the archive may still hold since the walk, or that is gone, becomes an empty entry named in
 * AGENTYARD-SKIPPED.txt, which is written last for that reason.
 */
function streamArchive(files: WorkspaceFileAccess, root: string, plan: ArchivePlan, bounds: ArchiveBounds, signal: AbortSignal): ZipFile {
  const zip = new ZipFile();
  const skipped = [...plan.skipped];
  let bytes = 0;
  const finish = (): void => {
    if (skipped.length > 0) {
      zip.addBuffer(Buffer.from(`These workspace entries are not in this archive:\n\n${skipped.join('\n')}\n`), 'AGENTYARD-SKIPPED.txt');
    }
    zip.end();
  };
  const lastFile = plan.items.findLast((item) => item.kind === 'file');
  const contentOf = async (file: string): Promise<Buffer> => {
    let content: Buffer;
    try {
      content = await files.read(file);
    } catch (error) {
      if (!(error instanceof AppError) || error.code === 'INTERNAL') throw error;
      skipped.push(`${file}  (changed while archived: ${error.message})`);
      return Buffer.alloc(0);
    }
    if (bytes + content.length > bounds.archiveMaxBytes) {
      skipped.push(`${file}  (grew while archived, past the archive's ${bounds.archiveMaxBytes} bytes; download it on its own)`);
      return Buffer.alloc(0);
    }
    bytes += content.length;
    return content;
  };
  for (const item of plan.items) {
    const name = archiveName(root ? item.path.slice(root.length + 1) : item.path);
    if (item.kind === 'directory') {
      zip.addEmptyDirectory(name, { mtime: item.modifiedAt });
      continue;
    }
    // Read only when yazl gets to the entry, so one file at a time is held in memory.
    zip.addReadStreamLazy(name, { mtime: item.modifiedAt, mode: 0o100644 }, (callback) => {
      if (signal.aborted) return callback(new Error('the client went away'), undefined as unknown as Readable);
      contentOf(item.path).then(
        (content) => {
          if (item === lastFile) finish();
          callback(null, Readable.from(content.length > 0 ? [content] : []));
        },
        (error: unknown) => callback(error as Error, undefined as unknown as Readable),
      );
    });
  }
  if (!lastFile) finish();
  return zip;
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
