import { defineConfig } from '@playwright/test';
import base from './playwright.config.js';

// The gateway tier on a two-node Swarm (infra/scripts/two-node-swarm.sh): edges on both nodes,
// an edge killed, a network partition, the edges scaled by load. In order: each leaves the stack
// as the next expects it.
export default defineConfig({
  ...base,
  globalSetup: './two-node-setup.ts',
  outputDir: './test-results/two-node',
  testDir: './two-node-tests',
  timeout: 240_000,
});
