import { agentUser } from '../exec-input.ts';
import { sandboxPaths } from '../../core/sandbox.ts';

/** Where the gateway's unix socket appears inside the sandbox. */
export const gatewaySocketPath = '/run/agentyard/gateway.sock';

/** Name of the agent user inside the sandbox. */

/** Fixed paths of the tools the sandbox uses; they come from the host's /usr, bound read-only. */
export const sandboxTools = {
  setpriv: '/usr/bin/setpriv',
  socat: '/usr/bin/socat',
} as const;

/** Pieces of the host's /etc the sandbox gets read-only (each only when present). Nothing else of /etc. */
export const hostEtcBinds = [
  '/etc/ssl',
  '/etc/ca-certificates',
  '/etc/alternatives',
  '/etc/ld.so.cache',
  '/etc/localtime',
  '/etc/nsswitch.conf',
] as const;

export interface InitCommandInput {
  /** Host path of bwrap. */
  bwrap: string;
  /** Host directories bound at /workspace and at the agent's HOME. */
  workspaceDir: string;
  homeDir: string;
  /** Host files generated for the sandbox's /etc. */
  etcFiles: EtcFilePaths;
  gatewaySocket: string;
  claudeBinary: string;
  uid: number;
  gid: number;
  gatewayPort: number;
  /** Size of /tmp and /dev/shm (tmpfs), in bytes. */
  tmpfsBytes: number;
  /** File descriptor on which bwrap reports the host pid of the sandbox's pid 1. */
  infoFd: number;
}

export interface EtcFilePaths {
  passwd: string;
  group: string;
  hosts: string;
}

/**
 * The command line of a sandbox's long-lived init: bubblewrap, run as root without a user namespace,
 * sets up fresh namespaces and a minimal read-only file system, then runs the gateway bridge as the
 * unprivileged sandbox user. Its pid 1 holds the namespaces that exec() later enters.
 */
export function buildInitArgv(input: InitCommandInput): string[] {
  const tmpfsSize = String(input.tmpfsBytes);
  return [
    input.bwrap,
    '--unshare-pid',
    '--unshare-net',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--die-with-parent',
    '--new-session',
    '--hostname', 'agentyard',
    '--info-fd', String(input.infoFd),
    // A merged-/usr system: only /usr comes from the host.
    '--ro-bind', '/usr', '/usr',
    '--symlink', 'usr/bin', '/bin',
    '--symlink', 'usr/lib', '/lib',
    '--symlink', 'usr/lib64', '/lib64',
    '--symlink', 'usr/sbin', '/sbin',
    '--perms', '0755', '--dir', '/etc',
    '--ro-bind', input.etcFiles.passwd, '/etc/passwd',
    '--ro-bind', input.etcFiles.group, '/etc/group',
    '--ro-bind', input.etcFiles.hosts, '/etc/hosts',
    ...hostEtcBinds.flatMap((file) => ['--ro-bind-try', file, file]),
    '--proc', '/proc',
    '--dev', '/dev',
    '--perms', '1777', '--size', tmpfsSize, '--tmpfs', '/tmp',
    '--perms', '1777', '--size', tmpfsSize, '--tmpfs', '/dev/shm',
    '--perms', '0755', '--dir', '/home',
    '--bind', input.homeDir, sandboxPaths.home,
    '--bind', input.workspaceDir, sandboxPaths.workspace,
    ...directoryChain(sandboxPaths.bin).flatMap((directory) => ['--perms', '0755', '--dir', directory]),
    '--ro-bind', input.claudeBinary, `${sandboxPaths.bin}/claude`,
    ...directoryChain(parentOf(gatewaySocketPath)).flatMap((directory) => ['--perms', '0755', '--dir', directory]),
    '--bind', input.gatewaySocket, gatewaySocketPath,
    // The root itself (a tmpfs bwrap made) becomes read-only too; the mounts above keep their own modes.
    '--remount-ro', '/',
    '--chdir', sandboxPaths.workspace,
    '--',
    ...dropPrivilegesArgv(input.uid, input.gid),
    sandboxTools.socat,
    `TCP-LISTEN:${input.gatewayPort},bind=127.0.0.1,fork,reuseaddr,nodelay`,
    `UNIX-CONNECT:${gatewaySocketPath}`,
  ];
}

/**
 * Moves bwrap's options off its command line onto a file descriptor (`--args FD`, NUL-separated), so that the
 * sandbox, which can read its pid 1's /proc/1/cmdline, does not see host paths such as the data directory.
 */
export function optionsOnFd(argv: string[], fd: number): { argv: string[]; options: Buffer } {
  const separator = argv.indexOf('--');
  if (separator < 1) throw new Error('bwrap command line without --');
  const options = argv.slice(1, separator);
  return {
    argv: [argv[0]!, '--args', String(fd), ...argv.slice(separator)],
    options: Buffer.from(options.map((option) => `${option}\0`).join('')),
  };
}

export interface ExecCommandInput {
  /** Host path of nsenter. */
  nsenter: string;
  /** Host pid of the sandbox's pid 1. */
  targetPid: number;
  /** Whether the init has its own cgroup namespace to enter. */
  cgroupNamespace: boolean;
  /** Working directory inside the sandbox. */
  cwd: string;
  uid: number;
  gid: number;
  argv: string[];
}

/**
 * The command line that runs argv inside a live sandbox: nsenter (as root, on the host) joins the
 * init's namespaces and root, forks into its pid namespace, then setpriv drops to the sandbox user.
 */
export function buildExecArgv(input: ExecCommandInput): string[] {
  return [
    input.nsenter,
    `--target=${input.targetPid}`,
    '--mount',
    '--net',
    '--pid',
    '--ipc',
    '--uts',
    ...(input.cgroupNamespace ? ['--cgroup'] : []),
    '--root',
    `--wdns=${input.cwd}`,
    '--',
    ...dropPrivilegesArgv(input.uid, input.gid),
    ...input.argv,
  ];
}

/** setpriv as used inside the sandbox: the sandbox user, no groups, no capabilities, no setuid gains. */
export function dropPrivilegesArgv(uid: number, gid: number): string[] {
  return [
    sandboxTools.setpriv,
    `--reuid=${uid}`,
    `--regid=${gid}`,
    '--clear-groups',
    '--no-new-privs',
    '--bounding-set=-all',
    '--inh-caps=-all',
    '--',
  ];
}

export interface LauncherOptions {
  /** Host path of sh. */
  shell: string;
  /** cgroup.procs files the process joins before it execs (one per hierarchy). */
  cgroupProcsFiles: string[];
  /** Host path of prlimit and the rlimits it sets (RLIMIT_NPROC only when cgroups cannot hold the pids limit). */
  prlimit?: { binary: string; nproc?: number; nofile?: number };
}

/**
 * Wraps a host command so that it joins the sandbox's cgroup (and takes its rlimits) before it
 * execs: everything it forks, in or out of the sandbox, is then accounted to the sandbox.
 */
export function buildLauncherArgv(command: string[], options: LauncherOptions, env: Record<string, string> = {}): string[] {
  const prefix: string[] = [];
  const steps = options.cgroupProcsFiles.map((file) => `echo $$ > ${shellQuote(file)} || exit 125`);
  if (steps.length > 0) {
    // sh exports PWD (the host's working directory) on its own: put back exactly what was given.
    const pwd = env.PWD === undefined ? 'unset PWD' : `export PWD=${shellQuote(env.PWD)}`;
    prefix.push(options.shell, '-c', [...steps, pwd, 'exec "$@"'].join('\n'), 'agentyard-launch');
  }
  if (options.prlimit) {
    prefix.push(options.prlimit.binary, '--core=0');
    if (options.prlimit.nproc !== undefined) prefix.push(`--nproc=${options.prlimit.nproc}`);
    if (options.prlimit.nofile !== undefined) prefix.push(`--nofile=${options.prlimit.nofile}`);
    prefix.push('--');
  }
  return [...prefix, ...command];
}

/** The generated /etc/passwd, /etc/group and /etc/hosts of a sandbox. */
export function buildEtcFiles(uid: number, gid: number): Record<keyof EtcFilePaths, string> {
  return {
    passwd: [
      'root:x:0:0:root:/root:/usr/sbin/nologin',
      `${agentUser}:x:${uid}:${gid}:Agentyard agent:${sandboxPaths.home}:/bin/bash`,
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
      '',
    ].join('\n'),
    group: ['root:x:0:', `${agentUser}:x:${gid}:`, 'nogroup:x:65534:', ''].join('\n'),
    hosts: ['127.0.0.1\tlocalhost agentyard', '::1\tlocalhost ip6-localhost ip6-loopback', ''].join('\n'),
  };
}

/** `/a/b/c` → [`/a`, `/a/b`, `/a/b/c`]: bwrap creates each with the mode given. */
function directoryChain(directory: string): string[] {
  const parts = directory.split('/').filter(Boolean);
  return parts.map((_, index) => `/${parts.slice(0, index + 1).join('/')}`);
}

function parentOf(file: string): string {
  return file.slice(0, file.lastIndexOf('/')) || '/';
}

const shellQuote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;
