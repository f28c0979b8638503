import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'web/src/**/*.test.ts'],
    // Above every inner wait of the end-to-end tests (at most 90 s), so that a hang fails with what it saw.
    testTimeout: 150_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Each end-to-end test runs real CLI processes (~300 MB, ~1 s of CPU each) on a 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
