import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // CLI and loop-device suites share /dev/loop*, so files run one at a time per worker.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
