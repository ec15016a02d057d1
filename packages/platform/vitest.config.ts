import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['@platform/test-services/vitest-setup'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Test files start real processes and servers; one at a time keeps timings sane on 2 cores.
    fileParallelism: false,
  },
});
