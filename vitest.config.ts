import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'web/src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Each end-to-end test runs real CLI processes (~300 MB, ~1 s of CPU each) on a 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
