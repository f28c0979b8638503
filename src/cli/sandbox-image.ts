import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../core/config.ts';
import { buildSandboxImage } from '../sandbox/docker/sandbox-image.ts';
import { print } from './output.ts';

/**
 * `agentyard sandbox-image [--force] [--tag IMAGE]`: builds the Docker sandbox image offline (Debian root file
 * system from the apt archive, the pinned Claude Code binary) into the engine at DOCKER_HOST, showing progress.
 */
export async function sandboxImage(config: Config, argv: string[], env: Record<string, string | undefined>): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { force: { type: 'boolean', default: false }, tag: { type: 'string' } },
    strict: true,
  });
  const image = values.tag ?? (config.sandbox.kind === 'docker' ? config.sandbox.image : (env.AGENTYARD_SANDBOX_IMAGE ?? 'agentyard-sandbox:latest'));
  const cacheHome = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  const startedAt = Date.now();
  const result = await buildSandboxImage({
    image,
    claudeBinary: config.agent.claudeBinary,
    cacheDir: env.AGENTYARD_CACHE_DIR || path.join(cacheHome, 'agentyard', 'sandbox-image'),
    ...(env.DOCKER_HOST ? { dockerHost: env.DOCKER_HOST } : {}),
    ...(env.AGENTYARD_DEBIAN_MIRROR ? { mirror: env.AGENTYARD_DEBIAN_MIRROR } : {}),
    force: values.force,
    onProgress: (line) => print(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${line}`),
  });
  print(`${result.image}: ${result.steps.join(', ')} (${(result.ms / 1000).toFixed(1)} s)`);
}
