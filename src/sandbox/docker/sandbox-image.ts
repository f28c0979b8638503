import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { hostDebianMirror } from './debian-mirror.ts';
import { AppError } from '../../core/errors.ts';
import { connectDocker, dockerStatus, followProgress, type DockerClient } from './docker-client.ts';

export interface SandboxImageOptions {
  /** Tag to build, e.g. `agentyard-sandbox:latest` (AGENTYARD_SANDBOX_IMAGE). */
  image: string;
  /** The pinned Claude Code binary put at /opt/agentyard/bin/claude. */
  claudeBinary: string;
  /** Where the root file system tarball is cached, keyed by its inputs. */
  cacheDir: string;
  dockerHost?: string;
  /** Debian suite, mirror and packages of the root file system. */
  suite?: string;
  mirror?: string;
  packages?: string[];
  /** Rebuild even when the image with these inputs exists. */
  force?: boolean;
  /** One line per step, for a person watching. */
  onProgress?: (line: string) => void;
}

export interface SandboxImageResult {
  image: string;
  baseImage: string;
  /** What was done: `cached` when the image with these inputs already existed. */
  steps: Array<'rootfs-built' | 'rootfs-cached' | 'base-imported' | 'base-present' | 'image-built' | 'cached'>;
  ms: number;
}

/** Files of the image's recipe, beside the Dockerfile for registry builds. */
export const imageRecipeDir = path.resolve(import.meta.dirname, '../../../deploy/sandbox-image');

const defaultPackages = ['socat', 'tini', 'git', 'ripgrep', 'python3', 'ca-certificates', 'procps', 'curl', 'make', 'gcc', 'libc6-dev'];
const inputsLabel = 'dev.agentyard.image-inputs';

/**
 * Builds the sandbox image with no registry: debootstrap a Debian root file system from the apt archive (cached as a
 * tarball keyed by its inputs), `docker import` it as a base image, then build Dockerfile.offline on top, adding the
 * pinned CLI binary. Each stage is skipped when its output for the same inputs exists.
 */
export async function buildSandboxImage(options: SandboxImageOptions): Promise<SandboxImageResult> {
  const startedAt = performance.now();
  const progress = options.onProgress ?? (() => undefined);
  const suite = options.suite ?? 'bookworm';
  const mirror = options.mirror ?? (await hostDebianMirror());
  if (!mirror) {
    throw new AppError('BAD_REQUEST', 'no Debian archive found in /etc/apt: set AGENTYARD_DEBIAN_MIRROR to a Debian mirror URL');
  }
  const packages = options.packages ?? defaultPackages;
  const docker = await connectDocker(options.dockerHost);
  await docker.ping().catch((error: unknown) => {
    throw new AppError('SANDBOX_UNAVAILABLE', `the Docker engine is not reachable: ${String(error)}`, {}, { cause: error });
  });
  const steps: SandboxImageResult['steps'] = [];

  const rootfsScript = path.join(imageRecipeDir, 'build-rootfs.sh');
  const rootfsKey = sha256([await readFile(rootfsScript, 'utf8'), suite, mirror, packages.join(',')].join('\n')).slice(0, 16);
  const baseImage = `agentyard-sandbox-base:${rootfsKey}`;
  const dockerfile = await readFile(path.join(imageRecipeDir, 'Dockerfile.offline'), 'utf8');
  progress(`hashing the Claude Code binary ${options.claudeBinary}`);
  const claudeHash = await hashFile(options.claudeBinary);
  const inputs = sha256([baseImage, dockerfile, claudeHash].join('\n')).slice(0, 16);

  if (!options.force && (await imageLabel(docker, options.image, inputsLabel)) === inputs) {
    progress(`${options.image} is up to date (inputs ${inputs})`);
    return { image: options.image, baseImage, steps: ['cached'], ms: Math.round(performance.now() - startedAt) };
  }

  if ((await imageLabel(docker, baseImage, 'dev.agentyard.rootfs')) === rootfsKey && !options.force) {
    progress(`base image ${baseImage} present`);
    steps.push('base-present');
  } else {
    await mkdir(options.cacheDir, { recursive: true });
    const tarball = path.join(options.cacheDir, `rootfs-${rootfsKey}.tar`);
    if ((await stat(tarball).catch(() => null))?.isFile() && !options.force) {
      progress(`root file system cached at ${tarball}`);
      steps.push('rootfs-cached');
    } else {
      progress(`building the root file system (Debian ${suite}; about a minute)`);
      await runScript(rootfsScript, [tarball, suite, mirror, packages.join(',')], progress);
      steps.push('rootfs-built');
      // Only the tarball of the current inputs is worth keeping.
      for (const entry of await readdir(options.cacheDir)) {
        if (/^rootfs-[0-9a-f]+\.tar$/.test(entry) && entry !== path.basename(tarball)) await rm(path.join(options.cacheDir, entry), { force: true });
      }
    }
    progress(`importing ${tarball} as ${baseImage}`);
    const stream = await docker.importImage(createReadStream(tarball), {
      repo: 'agentyard-sandbox-base',
      tag: rootfsKey,
      changes: [`LABEL dev.agentyard.rootfs=${rootfsKey}`],
    } as object);
    await followProgress(docker, stream, () => undefined);
    steps.push('base-imported');
  }

  progress(`building ${options.image} on ${baseImage}`);
  const context = await mkdtemp(path.join(options.cacheDir, 'context-'));
  try {
    await copyFile(path.join(imageRecipeDir, 'Dockerfile.offline'), path.join(context, 'Dockerfile'));
    await link(options.claudeBinary, path.join(context, 'claude')).catch(() => copyFile(options.claudeBinary, path.join(context, 'claude')));
    const tar = spawn('tar', ['-c', '-C', context, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const stream = await docker.buildImage(tar.stdout, {
      t: options.image,
      buildargs: { BASE_IMAGE: baseImage },
      labels: { [inputsLabel]: inputs, 'dev.agentyard.sandbox-image': 'true' },
      forcerm: true,
    });
    await followProgress(docker, stream, (message) => {
      const line = message.stream?.trim();
      if (line && /^Step \d+\/\d+/.test(line)) progress(`  ${line}`);
    });
    steps.push('image-built');
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  const ms = Math.round(performance.now() - startedAt);
  progress(`built ${options.image} in ${(ms / 1000).toFixed(1)} s`);
  return { image: options.image, baseImage, steps, ms };
}

/** Whether the engine has the image; `label` reads one of its labels. */
async function imageLabel(docker: DockerClient, image: string, label: string): Promise<string | null> {
  try {
    const info = await docker.getImage(image).inspect();
    return info.Config?.Labels?.[label] ?? '';
  } catch (error) {
    if (dockerStatus(error) === 404) return null;
    throw error;
  }
}

function runScript(script: string, args: string[], progress: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' } });
    let tail = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      tail = (tail + text).slice(-4000);
      for (const line of text.split('\n')) if (line.trim()) progress(`  ${line.trimEnd()}`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new AppError('INTERNAL', `building the root file system failed (exit ${code}): ${tail.trim().split('\n').pop()}`)),
    );
  });
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', (error) => reject(new AppError('SANDBOX_UNAVAILABLE', `cannot read the Claude Code binary: ${error.message}`)));
  });
}
