import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    globalSetup: ['@platform/test-services/vitest-setup'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
