import { connectDocker } from './docker-client.ts';

/** The image the Docker tests use (built by `npm run sandbox-image`). */
export const testImage = 'agentyard-sandbox:latest';

/**
 * Whether the Docker tests can run here: a reachable engine with the sandbox image and the runtime. Null when
 * they can; otherwise why not. With AGENTYARD_TEST_DOCKER=required (CI) a missing piece is an error, not a skip.
 */
export async function dockerUnavailable(runtime: 'runc' | 'runsc', env: Record<string, string | undefined>): Promise<string | null> {
  const reason = await probe(runtime, env.DOCKER_HOST);
  if (reason && env.AGENTYARD_TEST_DOCKER === 'required') throw new Error(`Docker tests are required but cannot run: ${reason}`);
  return reason;
}

async function probe(runtime: 'runc' | 'runsc', dockerHost: string | undefined): Promise<string | null> {
  try {
    const docker = await connectDocker(dockerHost);
    const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
    if (!Object.keys(info.Runtimes ?? {}).includes(runtime)) return `the engine has no ${runtime} runtime`;
    await docker.getImage(testImage).inspect();
    return null;
  } catch (error) {
    return `no Docker engine with ${testImage} (run .ci/run's docker steps, then npm run sandbox-image): ${error instanceof Error ? error.message : String(error)}`;
  }
}
