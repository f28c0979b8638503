import { chmod, chown, lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../core/errors.ts';

/** Host directory of one workspace: `<dataDir>/workspaces/<id>`, holding `workspace/` and the agent's `home/`. */
export const workspaceBase = (dataDir: string, workspaceId: string): string => path.join(dataDir, 'workspaces', workspaceId);

/** Creates `workspaces/<id>/{workspace,home}`, owned by the sandbox user; the parents stay root-only. */
export async function prepareWorkspaceDirectories(
  dataDir: string,
  workspaceId: string,
  owner: { uid: number; gid: number },
): Promise<{ workspace: string; home: string }> {
  const base = workspaceBase(dataDir, workspaceId);
  await mkdir(path.dirname(base), { recursive: true, mode: 0o700 });
  await mkdir(base, { recursive: true, mode: 0o700 });
  const directories = { workspace: path.join(base, 'workspace'), home: path.join(base, 'home') };
  for (const directory of Object.values(directories)) {
    await mkdir(directory, { recursive: true, mode: 0o700 });
    // lstat: the sandbox may not swap the directory itself for a symlink; it cannot (its parent is root's).
    const stats = await lstat(directory);
    if (!stats.isDirectory()) throw new AppError('INTERNAL', `workspace path is not a directory: ${directory}`);
    await chown(directory, owner.uid, owner.gid);
    await chmod(directory, 0o755);
  }
  return directories;
}
