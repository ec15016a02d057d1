import { defineConfig } from '@playwright/test';
import base from './playwright.config.js';

// The same browser tests, against the app as `docker compose up` runs it (docker runtime).
export default defineConfig({
  ...base,
  globalSetup: './compose-setup.ts',
  outputDir: './test-results/compose',
});
