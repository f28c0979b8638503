import type { ErrorCode } from '../core/errors.ts';
import type { SandboxPressure } from '../core/sandbox.ts';

/** A limit the sandbox ran into, told to the user as an `error` event; the turn and the conversation go on. */
export interface LimitNotice {
  code: Extract<ErrorCode, 'SANDBOX_OUT_OF_MEMORY' | 'WORKSPACE_FULL'>;
  message: string;
}

const mib = 1024 * 1024;

/** A workspace counts as full below 1 MiB free, or below 0.5 % of a disk larger than 200 MiB. */
export function isDiskFull(disk: NonNullable<SandboxPressure['disk']>): boolean {
  return disk.freeBytes < Math.max(mib, disk.sizeBytes / 200);
}

/**
 * Turns one sandbox's pressure readings into notices, once per occurrence: each new OOM kill, and each time the
 * workspace fills up (again, after it had room).
 */
export class LimitWatch {
  private oomKills = 0;
  private full = false;

  constructor(private readonly memoryMb: number) {}

  observe(pressure: SandboxPressure): LimitNotice[] {
    const notices: LimitNotice[] = [];
    if (pressure.oomKills > this.oomKills) {
      const kills = pressure.oomKills - this.oomKills;
      this.oomKills = pressure.oomKills;
      notices.push({
        code: 'SANDBOX_OUT_OF_MEMORY',
        message:
          `${kills === 1 ? 'a process' : `${kills} processes`} in the sandbox ${kills === 1 ? 'was' : 'were'} killed: the sandbox reached ` +
          `the agent's memory limit of ${this.memoryMb} MiB; raise the limit if the agent's work needs more`,
      });
    }
    const full = pressure.disk !== null && isDiskFull(pressure.disk);
    if (full && !this.full) {
      notices.push({
        code: 'WORKSPACE_FULL',
        message: `the workspace is full (its limit is ${Math.round(pressure.disk!.sizeBytes / mib)} MiB): writes fail with "No space left on device" until files are deleted`,
      });
    }
    this.full = full;
    return notices;
  }
}
