import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { repoRoot } from '@platform/test-services';

const run = promisify(execFile);
const gateway = () => process.env.VOTE_URL!;
const name = 'hello-live';
const folder = join(repoRoot, 'functions', name);
// The README's screenshot of a live deploy: refreshed with UPDATE_SCREENSHOTS=1, else kept with the test results.
const screenshot = process.env.UPDATE_SCREENSHOTS
  ? join(import.meta.dirname, '..', '..', 'docs', 'workshop-deploy.png')
  : join(import.meta.dirname, '..', 'test-results', 'workshop-deploy.png');
const fn = (...args: string[]) =>
  run(process.execPath, [join(repoRoot, 'packages/cli/dist/main.js'), '--gateway', gateway(), '--token', process.env.GATEWAY_ADMIN_TOKEN!, ...args], {
    cwd: repoRoot,
  });
const greet = async () => {
  const response = await fetch(`${gateway()}/function/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"room"}' });
  return { status: response.status, body: (await response.json()) as { greeting?: string } };
};

// A workshop's live deploy as the room sees it on the projector: a new card, its cold start, and
// the deploy, the update and the removal on the timeline, with nothing restarted.
test('a function deployed, updated and removed with fn shows live on the dashboard', async ({ browser, request }) => {
  test.setTimeout(90_000);
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  const page = await context.newPage();
  const errors: Error[] = [];
  page.on('pageerror', (error) => errors.push(error));
  try {
    await page.goto(`${gateway()}/system/ui/`);
    await expect(page.getByTestId('connection')).toContainText('Live');
    const card = page.getByTestId(`function-${name}`);
    const timeline = page.getByTestId('timeline');
    await expect(card).toHaveCount(0);

    await fn('new', name, '--lang', 'python');
    expect((await fn('deploy', `functions/${name}`)).stdout).toContain(`${name}: deployed`);
    await expect(card).toBeVisible();
    await expect(card.getByTestId('state')).toHaveText('scaled to zero');
    await expect(timeline).toContainText(`${name} ✚ deployed`);

    expect(await greet()).toEqual({ status: 200, body: expect.objectContaining({ greeting: 'Hello, room!' }) });
    await expect(card.getByTestId('instance')).toHaveCount(1);
    await expect(card.getByTestId('instance')).toContainText(/cold start \d+ ms/);
    // A few votes beside it, as the room keeps voting during the demo.
    for (const option of ['a', 'b', 'a']) expect((await request.post(`${gateway()}/function/vote`, { data: { vote: option } })).ok()).toBe(true);
    await page.waitForTimeout(1_500); // the newest instances fade in
    await page.screenshot({ path: screenshot });

    const main = join(folder, 'main.py');
    writeFileSync(main, readFileSync(main, 'utf8').replace('f"Hello, {name}!"', 'f"Welcome, {name}!"'));
    expect((await fn('deploy', `functions/${name}`)).stdout).toContain(`${name}: updated`);
    await expect(timeline).toContainText(`${name} ↻ updated`);
    expect(await greet()).toEqual({ status: 200, body: expect.objectContaining({ greeting: 'Welcome, room!' }) });

    expect((await fn('rm', name)).stdout).toBe(`${name}: removed\n`);
    await expect(card).toHaveCount(0);
    await expect(timeline).toContainText(`${name} ✖ removed`);
    expect((await greet()).status).toBe(404);
    expect(errors).toEqual([]);
  } finally {
    await fn('rm', name).catch(() => {});
    rmSync(folder, { recursive: true, force: true });
    await context.close();
  }
});
