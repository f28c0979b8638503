import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { connectDocker } from '../../src/sandbox/docker/docker-client.ts';
import { testConfiguration } from './test-configuration.ts';

/**
 * Host pids of processes inside the local backend's sandboxes of one data directory: they live in a mount namespace
 * of their own, whose mount table shows the data directory's files (the gateway socket, the workspace). `comm`
 * narrows it to one program (e.g. `claude`). The host's own mount table shows the directory too (workspace disks are
 * mounted there).
 */
export function sandboxProcesses(dataDir: string, comm?: string): number[] {
  const hostNamespace = readlinkSync('/proc/self/ns/mnt');
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .filter((pid) => {
      try {
        if (comm !== undefined && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== comm) return false;
        if (readlinkSync(`/proc/${pid}/ns/mnt`) === hostNamespace) return false;
        return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(dataDir);
      } catch {
        return false; // the process ended while we looked
      }
    })
    .map(Number);
}

/**
 * Runs `action` for each pid (`$pid`) of one program inside a container, with nothing but the shell (no procps
 * needed), and prints what the action prints.
 */
const forEachInside = (comm: string, action: string): string[] => [
  'sh',
  '-c',
  `for p in /proc/[0-9]*; do pid=\${p#/proc/}; [ "$(cat $p/comm 2>/dev/null)" = "${comm}" ] && ${action}; done; true`,
];

/**
 * The agent processes (`comm`, by default the Claude CLI) running in a data directory's sandboxes, on the backend of
 * the test configuration: host pids on the local backend, `container/pid` on Docker (gVisor has no host pids).
 * Paused containers are left out: nothing runs in them.
 */
export async function agentProcesses(dataDir: string, comm = 'claude'): Promise<string[]> {
  if (testConfiguration().sandbox === 'local') return sandboxProcesses(dataDir, comm).map(String);
  const found: string[] = [];
  for (const container of await runningContainers(dataDir)) {
    const output = await execInContainer(container, forEachInside(comm, 'echo "$pid"')).catch(() => '');
    for (const pid of output.split('\n').filter(Boolean)) found.push(`${container.slice(0, 12)}/${pid}`);
  }
  return found.sort();
}

/**
 * Stops (SIGSTOP) every agent process of a data directory's sandboxes, so that it can answer nothing; counts the
 * processes stopped. On Docker the signal is sent as the container's own user, the agent's: the sandbox drops every
 * capability, so its root may not signal another user's process (EPERM).
 */
export async function stopAgentProcesses(dataDir: string, comm = 'claude'): Promise<number> {
  if (testConfiguration().sandbox === 'local') {
    const pids = sandboxProcesses(dataDir, comm);
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    return pids.length;
  }
  let stopped = 0;
  for (const container of await runningContainers(dataDir)) {
    const output = await execInContainer(container, forEachInside(comm, 'kill -STOP "$pid" && echo "$pid"'));
    stopped += output.split('\n').filter(Boolean).length;
  }
  return stopped;
}

/** Running (not paused) containers of the installation that a data directory is. */
async function runningContainers(dataDir: string): Promise<string[]> {
  const installation = createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16);
  const docker = await connectDocker(process.env.DOCKER_HOST);
  const listed = await docker.listContainers({ filters: { label: [`dev.agentyard.installation=${installation}`], status: ['running'] } });
  return listed.map((container) => container.Id);
}

/**
 * Runs argv as the container's own user (the agent's) and returns its stdout; nothing for a container removed since it
 * was listed (an idle sandbox stopped meanwhile).
 */
async function execInContainer(containerId: string, argv: string[]): Promise<string> {
  const docker = await connectDocker(process.env.DOCKER_HOST);
  const exec = await docker
    .getContainer(containerId)
    .exec({ Cmd: argv, AttachStdout: true, AttachStderr: false })
    .catch((error: unknown) => {
      if ((error as { statusCode?: number }).statusCode === 404 || (error as { statusCode?: number }).statusCode === 409) return null;
      throw error;
    });
  if (!exec) return '';
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  const output = new PassThrough();
  output.on('data', (chunk: Buffer) => chunks.push(chunk));
  docker.modem.demuxStream(stream, output, output);
  await new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  return Buffer.concat(chunks).toString();
}
