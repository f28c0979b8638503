import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import Fastify from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installErrorHandlers } from './errors.ts';
import type { App } from './app.ts';
import { registerWebApp } from './static.ts';

async function appServing(root: string): Promise<App> {
  const app = Fastify().withTypeProvider<ZodTypeProvider>() as unknown as App;
  installErrorHandlers(app);
  app.get('/api/real', async () => ({ ok: true }));
  registerWebApp(app, { root });
  await app.ready();
  return app;
}

describe('registerWebApp', () => {
  let root: string;
  let app: App;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'agentyard-web-'));
    mkdirSync(path.join(root, 'assets'));
    writeFileSync(path.join(root, 'index.html'), '<!doctype html><div id="root"></div>');
    writeFileSync(path.join(root, 'assets', 'app-abc123.js'), 'console.log(1)');
    writeFileSync(path.join(root, 'assets', 'app-abc123.js.gz'), gzipSync('console.log(1)'));
    writeFileSync(path.join(root, 'favicon.svg'), '<svg/>');
    app = await appServing(root);
  });
  afterAll(async () => {
    await app?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves index.html at / and at every app route, uncached and with a strict CSP', async () => {
    for (const url of ['/', '/c/conv_123', '/agents', '/admin?x=1']) {
      const response = await app.inject({ url });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(response.body).toContain('<div id="root">');
      expect(response.headers['cache-control']).toBe('no-cache');
      expect(response.headers['content-security-policy']).toContain("script-src 'self'");
      expect(response.headers['x-frame-options']).toBe('DENY');
    }
  });

  it('serves hashed assets for good, gzipped to clients that accept it', async () => {
    const plain = await app.inject({ url: '/assets/app-abc123.js' });
    expect(plain.body).toBe('console.log(1)');
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['cache-control']).toContain('immutable');
    const gzipped = await app.inject({ url: '/assets/app-abc123.js', headers: { 'accept-encoding': 'gzip, br' } });
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.rawPayload).toEqual(gzipSync('console.log(1)'));
    expect((await app.inject({ url: '/favicon.svg' })).headers['content-type']).toBe('image/svg+xml');
  });

  it('answers missing assets and unknown API routes with the API’s JSON 404', async () => {
    for (const url of ['/assets/missing.js', '/api/nope', '/api/conversations/x/y/z', '/healthz/extra']) {
      const response = await app.inject({ url });
      expect(response.statusCode, url).toBe(404);
      expect(response.json().error.code).toBe('NOT_FOUND');
    }
    expect((await app.inject({ url: '/api/real' })).json()).toEqual({ ok: true });
  });

  it('never serves a file outside its root', async () => {
    writeFileSync(path.join(path.dirname(root), 'agentyard-web-secret.txt'), 'THE-FILE-CONTENT');
    try {
      for (const url of ['/../agentyard-web-secret.txt', '/%2e%2e/agentyard-web-secret.txt', '/..%2fagentyard-web-secret.txt', '/assets/..%2f..%2fagentyard-web-secret.txt', '/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/a%00b.js', '/%E0%A4%A']) {
        const response = await app.inject({ url });
        expect(response.body, url).not.toContain('THE-FILE-CONTENT');
        expect(response.body, url).not.toContain('root:x:0:0');
        expect([200, 400, 404], url).toContain(response.statusCode);
      }
    } finally {
      rmSync(path.join(path.dirname(root), 'agentyard-web-secret.txt'), { force: true });
    }
  });

  it('says how to build the app when it is not built', async () => {
    const bare = await appServing(path.join(root, 'does-not-exist'));
    const response = await bare.inject({ url: '/' });
    expect(response.statusCode).toBe(503);
    expect(response.body).toContain('npm run build:web');
    await bare.close();
  });
});
