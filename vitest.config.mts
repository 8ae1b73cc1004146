import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // One real Temporal dev server for the whole run; each file brings its own PostgreSQL lab.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 240_000,
    // Two cores: two files at a time, each with its own lab ports, task queue and workflow ids.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
