import type { AgentLimits } from '../api/types.ts';

const labels: Record<keyof AgentLimits, (value: number) => string> = {
  memoryMb: (value) => `Memory is at most ${value} MiB here`,
  cpus: (value) => `CPUs are at most ${value} here`,
  turnTimeoutSeconds: (value) => `The turn timeout is at most ${value} s here`,
};
const order: (keyof AgentLimits)[] = ['memoryMb', 'cpus', 'turnTimeoutSeconds'];

/** Why the limits do not fit the installation's ceilings (the first one over), or null when they do. */
export function ceilingProblem(limits: AgentLimits, ceilings: AgentLimits | null): string | null {
  const over = ceilings ? order.find((name) => limits[name] > ceilings[name]) : undefined;
  return over && ceilings ? labels[over](ceilings[over]) : null;
}

/** The limits lowered to the ceilings (a new agent starts within them). */
export function withinCeilings(limits: AgentLimits, ceilings: AgentLimits | null): AgentLimits {
  if (!ceilings) return limits;
  return {
    memoryMb: Math.min(limits.memoryMb, ceilings.memoryMb),
    cpus: Math.min(limits.cpus, ceilings.cpus),
    turnTimeoutSeconds: Math.min(limits.turnTimeoutSeconds, ceilings.turnTimeoutSeconds),
  };
}
