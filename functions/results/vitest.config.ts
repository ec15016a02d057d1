import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['@platform/test-services/vitest-setup'],
    hookTimeout: 60_000,
  },
});
