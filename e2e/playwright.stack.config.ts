import { defineConfig } from '@playwright/test';
import base from './playwright.config.js';

// The browser test and the Swarm tests, against the app deployed as a Swarm stack (swarm
// runtime). The browser test goes first: its percentages need a database with few votes. The
// test of a deploy next to an earlier stack's data goes last: it removes the stack.
export default defineConfig({
  ...base,
  globalSetup: './stack-setup.ts',
  outputDir: './test-results/stack',
  projects: [
    { name: 'browser', testDir: './tests', testMatch: 'vote-to-result.spec.ts' },
    { name: 'swarm', testDir: './stack-tests', testIgnore: 'stale-data.spec.ts', dependencies: ['browser'], timeout: 90_000 },
    { name: 'stale data', testDir: './stack-tests', testMatch: 'stale-data.spec.ts', dependencies: ['swarm'], timeout: 300_000 },
  ],
});
