import { readFile } from 'node:fs/promises';

/** One line of /proc/self/mountinfo, as the sandbox backends need it. */
export interface MountEntry {
  /** The mount point, unescaped. */
  target: string;
  readOnly: boolean;
  /** Part of a shared peer group (propagates mounts). */
  shared: boolean;
  fsType: string;
  /** The file system's own options (for cgroup v1: which controllers the hierarchy holds). */
  superOptions: string[];
}

/** This process's mount table. */
export async function readMounts(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!before || !after) continue;
    const fields = before.split(' ');
    const [fsType = '', , superOptions = ''] = after.split(' ');
    entries.push({
      target: unescapeMountPath(fields[4] ?? ''),
      readOnly: (fields[5] ?? '').split(',').includes('ro'),
      shared: fields.slice(6).some((field) => field.startsWith('shared:')),
      fsType,
      superOptions: superOptions.split(','),
    });
  }
  return entries;
}

/** Mount points at or under a directory, deepest first. */
export async function mountsUnder(directory: string): Promise<string[]> {
  return (await readMounts())
    .map((entry) => entry.target)
    .filter((target) => target === directory || target.startsWith(`${directory}/`))
    .sort((a, b) => b.length - a.length);
}

/** Whether something is mounted exactly at the directory. */
export async function isMountPoint(directory: string): Promise<boolean> {
  return (await readMounts()).some((entry) => entry.target === directory);
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescapeMountPath = (value: string): string => value.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
