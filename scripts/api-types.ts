/**
 * Writes web/src/api/schema.d.ts, the web app's API types, from the server's OpenAPI spec: `npm run api-types`.
 * The spec is built in this process, as the server serves it, without opening a port; src/http/openapi-types.test.ts
 * fails when the committed file differs from what this writes.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import openapiTS, { astToString, type OpenAPI3 } from 'openapi-typescript';
import { loadConfig } from '../src/core/config.ts';
import { silentLogger } from '../src/core/logger.ts';
import { startPlatform } from '../src/platform.ts';

export const schemaFile = fileURLToPath(new URL('../web/src/api/schema.d.ts', import.meta.url));

const header = `/**
 * The API's shapes, generated from the server's OpenAPI spec by \`npm run api-types\` (scripts/api-types.ts).
 * Do not edit: change the routes' zod schemas and run it again.
 */

`;

/** The OpenAPI spec of GET /api/openapi.json, from a platform built on a temporary SQLite store with default settings. */
export async function buildApiSpec(): Promise<OpenAPI3> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'agentyard-api-types-'));
  try {
    // Only the data directory is set: the spec must not depend on the environment of whoever generates it.
    const platform = await startPlatform(loadConfig({ env: { AGENTYARD_DATA_DIR: dataDir } }), silentLogger, { listen: false });
    try {
      return platform.app.swagger() as OpenAPI3;
    } finally {
      await platform.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The TypeScript declarations of the spec, as written to web/src/api/schema.d.ts. */
export async function renderApiTypes(spec: OpenAPI3): Promise<string> {
  return header + astToString(await openapiTS(spec));
}

async function main(): Promise<void> {
  await writeFile(schemaFile, await renderApiTypes(await buildApiSpec()));
  process.stdout.write(`wrote ${path.relative(process.cwd(), schemaFile)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
