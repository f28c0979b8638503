import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyReply } from 'fastify';
import type { App } from './app.ts';

/** The built web app (`npm run build:web` writes it; `npm start` builds it when its sources changed). */
export const defaultWebRoot = path.resolve(import.meta.dirname, '../../web/dist');

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Paths the app never owns: unknown ones there get the API's JSON 404, not the app. */
const serverPrefixes = ['/api/', '/healthz', '/readyz'];

const pageHeaders = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

const notBuiltPage = `<!doctype html><meta charset="utf-8"><title>Agentyard</title>
<body style="font-family:system-ui;max-width:40rem;margin:4rem auto;line-height:1.5">
<h1>The web app is not built</h1><p>Run <code>npm run build:web</code> (or <code>npm start</code>, which builds it), then reload.
The API is available at <a href="/api/openapi.json">/api/openapi.json</a>.</p></body>`;

/**
 * Serves the single-page app: its files from `root`, hashed assets cached for good, and index.html for
 * every other GET that is not the API's, so that client-side routes survive a reload.
 */
export function registerWebApp(app: App, options: { root?: string } = {}): void {
  const root = options.root ?? defaultWebRoot;

  app.get('/*', { schema: { hide: true } }, async (request, reply) => {
    const urlPath = request.url.split('?')[0] ?? '/';
    if (serverPrefixes.some((prefix) => urlPath === prefix.replace(/\/$/, '') || urlPath.startsWith(prefix))) return reply.callNotFound();
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return reply.callNotFound();
    }
    const file = decoded.includes('\0') ? null : path.join(root, path.posix.normalize(decoded));
    if (file && file.startsWith(`${root}${path.sep}`)) {
      const stats = await stat(file).catch(() => null);
      if (stats?.isFile()) {
        const immutable = decoded.startsWith('/assets/');
        return sendFile(request.headers['accept-encoding'], reply, file, immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
      }
    }
    // A missing asset is a 404; anything else is a route of the app.
    if (path.posix.extname(decoded) !== '' && !decoded.endsWith('.html')) return reply.callNotFound();
    const index = path.join(root, 'index.html');
    if (!(await stat(index).catch(() => null))) {
      return reply.status(503).headers(pageHeaders).type('text/html; charset=utf-8').send(notBuiltPage);
    }
    void reply.headers(pageHeaders);
    return sendFile(request.headers['accept-encoding'], reply, index, 'no-cache');
  });
}

async function sendFile(acceptEncoding: string | undefined, reply: FastifyReply, file: string, cacheControl: string): Promise<FastifyReply> {
  const type = contentTypes[path.extname(file)] ?? 'application/octet-stream';
  void reply.header('content-type', type).header('cache-control', cacheControl).header('x-content-type-options', 'nosniff').header('vary', 'accept-encoding');
  // The build writes a .gz beside every compressible file.
  if (/\bgzip\b/.test(acceptEncoding ?? '')) {
    const compressed = await stat(`${file}.gz`).catch(() => null);
    if (compressed?.isFile()) {
      return reply.header('content-encoding', 'gzip').header('content-length', compressed.size).send(createReadStream(`${file}.gz`));
    }
  }
  const stats = await stat(file);
  return reply.header('content-length', stats.size).send(createReadStream(file));
}
