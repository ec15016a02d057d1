import { defineConfig } from '@playwright/test';
import base from './playwright.config.js';

// The README's commands walked on a fresh clone, at default settings and ports (8080, 8081):
// run alone, after the other suites, since it starts the app, compose and the stack on them.
export default defineConfig({
  ...base,
  testDir: './readme-tests',
  globalSetup: undefined,
  outputDir: './test-results/readme',
  timeout: 600_000,
});
