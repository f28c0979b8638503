import { describe, expect, it } from 'vitest';
import { ceilingProblem, withinCeilings } from './agent-ceilings.ts';

const ceilings = { memoryMb: 4096, cpus: 4, turnTimeoutSeconds: 3600 };

describe('agent ceilings in the editor', () => {
  it('names the first limit over its ceiling, and nothing when all fit or the ceilings are unknown', () => {
    expect(ceilingProblem({ memoryMb: 4096, cpus: 4, turnTimeoutSeconds: 3600 }, ceilings)).toBeNull();
    expect(ceilingProblem({ memoryMb: 65536, cpus: 64, turnTimeoutSeconds: 60 }, ceilings)).toBe('Memory is at most 4096 MiB here');
    expect(ceilingProblem({ memoryMb: 1024, cpus: 1, turnTimeoutSeconds: 86400 }, ceilings)).toBe('The turn timeout is at most 3600 s here');
    expect(ceilingProblem({ memoryMb: 65536, cpus: 64, turnTimeoutSeconds: 86400 }, null)).toBeNull();
  });

  it('starts a new agent within the ceilings', () => {
    expect(withinCeilings({ memoryMb: 2048, cpus: 2, turnTimeoutSeconds: 900 }, { memoryMb: 1024, cpus: 4, turnTimeoutSeconds: 600 })).toEqual({ memoryMb: 1024, cpus: 2, turnTimeoutSeconds: 600 });
  });
});
