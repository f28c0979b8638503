import type Dockerode from 'dockerode';
import { AppError } from '../../core/errors.ts';

/** The Docker Engine API client (dockerode), loaded on first use so that other backends never pay for it. */
export type DockerClient = Dockerode;

/**
 * Connects to the engine named like DOCKER_HOST (`unix:///path`, `tcp://host:port`, `http(s)://…`), or to
 * /var/run/docker.sock when none is given. No I/O happens until the first request.
 */
export async function connectDocker(dockerHost?: string): Promise<DockerClient> {
  const { default: Docker } = await import('dockerode');
  return new Docker({ ...dockerOptions(dockerHost), timeout: 0 });
}

/** dockerode's connection options for a DOCKER_HOST value. */
export function dockerOptions(dockerHost?: string): { socketPath: string } | { host: string; port: number; protocol: 'http' | 'https' } {
  if (!dockerHost) return { socketPath: '/var/run/docker.sock' };
  if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) };
  if (dockerHost.startsWith('/')) return { socketPath: dockerHost };
  const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AppError('BAD_REQUEST', `unsupported DOCKER_HOST ${dockerHost}: use unix://, tcp://, http:// or https://`);
  }
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : url.protocol === 'https:' ? 2376 : 2375,
    protocol: url.protocol === 'https:' ? 'https' : 'http',
  };
}

/** Docker's HTTP status of a failed request (404 for a missing container), if it has one. */
export function dockerStatus(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Docker's message of a failed request, without the request details dockerode adds. */
export function dockerMessage(error: unknown): string {
  const json = (error as { json?: { message?: unknown } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return error instanceof Error ? error.message : String(error);
}

/** Reads a progress stream (pull, import, build) to its end, passing each JSON message on; rejects on an error message. */
export function followProgress(
  client: DockerClient,
  stream: NodeJS.ReadableStream,
  onMessage: (message: { stream?: string; status?: string; progress?: string; error?: string; aux?: unknown }) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    client.modem.followProgress(
      stream,
      (error: Error | null, messages: Array<{ error?: string }>) => {
        const failed = messages?.find((message) => message.error);
        if (error) reject(error);
        else if (failed) reject(new Error(failed.error));
        else resolve();
      },
      onMessage,
    );
  });
}
