import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Host pids of processes inside the sandboxes of one data directory: they live in a mount namespace of their own,
 * whose mount table shows the data directory's files (the gateway socket, the workspace). `comm` narrows it to one
 * program (e.g. `claude`). The host's own mount table shows the directory too (workspace disks are mounted there).
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
