import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    // One app per file; files one after the other so the figures do not fight for the CPU.
    fileParallelism: false,
  },
});
