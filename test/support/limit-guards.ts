/**
 * Guards that keep a skip decided by the code under test (a limit it says it cannot enforce, cgroups it says are
 * missing) from turning CI green silently:
 * - AGENTYARD_TEST_LIMITS=required (set by .ci/run): a test that would skip because a limit is not enforced here
 *   fails instead;
 * - AGENTYARD_TEST_CGROUP=v2 (set by the cgroup v2 CI lane, scripts/cgroup2-lane.sh): the same for missing cgroup
 *   support, and the cgroup tests check that the cgroup v2 code ran.
 * Unset: tests skip what the host cannot do, with the reason.
 */
export const limitsRequired = readGuard('AGENTYARD_TEST_LIMITS', 'required');
export const cgroupV2Required = readGuard('AGENTYARD_TEST_CGROUP', 'v2');

type SkipContext = { skip: (condition: boolean, note?: string) => void };

/** `context.skip(unavailable, note)`, except that under AGENTYARD_TEST_LIMITS=required the test fails with the note. */
export function skipWithoutLimit(context: SkipContext, unavailable: boolean, note: string): void {
  if (unavailable && limitsRequired) throw new Error(`AGENTYARD_TEST_LIMITS=required, yet ${note}`);
  context.skip(unavailable, note);
}

/** As skipWithoutLimit, and under AGENTYARD_TEST_CGROUP=v2 missing cgroup support fails too. */
export function skipWithoutCgroups(context: SkipContext, unavailable: boolean, note: string): void {
  if (unavailable && cgroupV2Required) throw new Error(`AGENTYARD_TEST_CGROUP=v2, yet ${note}`);
  skipWithoutLimit(context, unavailable, note);
}

function readGuard(name: string, on: string): boolean {
  const value = process.env[name];
  if (value === undefined || value === '') return false;
  if (value !== on) throw new Error(`${name} must be ${on} or unset, not ${JSON.stringify(value)}`);
  return true;
}
