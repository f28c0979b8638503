import { readdirSync, readFileSync } from 'node:fs';

/**
 * Host pids of processes inside the sandboxes of one data directory: their mount tables show its
 * workspaces. `comm` narrows it to one program (e.g. `claude`).
 */
export function sandboxProcesses(dataDir: string, comm?: string): number[] {
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .filter((pid) => {
      try {
        if (comm !== undefined && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== comm) return false;
        return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(dataDir);
      } catch {
        return false; // the process ended while we looked
      }
    })
    .map(Number);
}
