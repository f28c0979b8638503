import { AppError } from '../core/errors.ts';
import type { Sandbox } from '../core/sandbox.ts';

/** How long the check waits for its command; a sandbox too busy to answer in time counts as alive. */
const checkTimeoutMs = 10_000;

/**
 * Whether a command still runs in the sandbox. A gVisor sandbox past its process (or memory) limit dies as a whole,
 * taking the agent with it; a sandbox in that state refuses to run anything, even `true`.
 */
export async function sandboxAlive(sandbox: Sandbox): Promise<boolean> {
  let probe: ReturnType<Sandbox['exec']>;
  try {
    probe = sandbox.exec(['true']);
  } catch (error) {
    if (error instanceof AppError && error.code === 'SANDBOX_UNAVAILABLE') return false;
    throw error;
  }
  probe.stdout.resume();
  probe.stderr.resume();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), checkTimeoutMs)));
  const status = await Promise.race([probe.exited, timedOut]);
  clearTimeout(timer);
  if (status === null) {
    probe.kill('SIGKILL');
    return true;
  }
  return status.code === 0;
}
