import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['@voting/test-services/vitest-setup'],
    hookTimeout: 60_000,
  },
});
