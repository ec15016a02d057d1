import { join } from 'node:path';
import { expect, test, type APIRequestContext } from '@playwright/test';

const gateway = () => process.env.VOTE_URL!;
const admin = () => ({ authorization: `Bearer ${process.env.GATEWAY_ADMIN_TOKEN}` });
// The README's screenshot: refreshed with UPDATE_SCREENSHOTS=1, else kept with the test results.
const screenshot = process.env.UPDATE_SCREENSHOTS
  ? join(import.meta.dirname, '..', '..', 'docs', 'dashboard.png')
  : join(import.meta.dirname, '..', 'test-results', 'dashboard.png');

async function scale(request: APIRequestContext, name: string, replicas: number): Promise<void> {
  const response = await request.post(`${gateway()}/system/scale-function/${name}`, { data: { serviceName: name, replicas }, headers: admin() });
  expect(response.status()).toBe(200);
}

test('the dashboard shows an instance appear on a call and go when scaled to zero, and is right after a reload', async ({ browser, request }) => {
  const context = await browser.newContext({ viewport: { width: 1600, height: 900 } });
  const page = await context.newPage();
  const errors: Error[] = [];
  page.on('pageerror', (error) => errors.push(error));
  await scale(request, 'vote', 0);

  await page.goto(`${gateway()}/system/ui/`);
  await expect(page.getByTestId('connection')).toContainText('Live');
  const vote = page.getByTestId('function-vote');
  await expect(vote.getByTestId('instance')).toHaveCount(0);
  await expect(vote.getByTestId('state')).toHaveText('scaled to zero');

  // A call starts an instance: it appears on the card, as a cold start.
  expect((await request.get(`${gateway()}/function/vote`)).ok()).toBe(true);
  await expect(vote.getByTestId('instance')).toHaveCount(1);
  await expect(vote.getByTestId('instance')).toContainText(/vote-[0-9a-f]{6}/);
  await expect(vote.getByTestId('instance')).toContainText(/pid \d+ · cold start \d+ ms/);
  await expect(vote.getByTestId('state')).toHaveText('warm');
  await expect(page.getByTestId('timeline')).toContainText('vote');

  // A few votes, so every function shows some life in the README's screenshot, with someone
  // watching the results (the live scores are read from results only for a viewer).
  const viewer = await context.newPage();
  await viewer.goto(`${gateway()}/result/`);
  await expect(viewer.getByTestId('connection')).toContainText('Live');
  for (const option of ['a', 'b', 'a']) {
    const response = await request.post(`${gateway()}/function/vote`, { data: { vote: option } });
    expect(response.ok()).toBe(true);
  }
  // Queued votes start record-vote (one or two instances), and the fan-out to the viewer starts results.
  await expect(page.getByTestId('function-record-vote').getByTestId('instance').first()).toBeVisible({ timeout: 10_000 });
  await expect(page.getByTestId('function-results').getByTestId('instance').first()).toBeVisible({ timeout: 10_000 });
  await expect(vote.getByTestId('calls-per-second')).not.toHaveText('0.0');
  await page.waitForTimeout(600); // let the newest instance finish fading in
  await page.screenshot({ path: screenshot });

  // The state survives a reload (a fresh connection gets the whole snapshot).
  await page.reload();
  await expect(page.getByTestId('connection')).toContainText('Live');
  await expect(page.getByTestId('function-vote').getByTestId('instance')).toHaveCount(1);

  // Scaled to zero (what the idle reaper does after idleSeconds): the instance goes.
  await scale(request, 'vote', 0);
  await expect(page.getByTestId('function-vote').getByTestId('instance')).toHaveCount(0);
  await expect(page.getByTestId('function-vote').getByTestId('state')).toHaveText('scaled to zero');
  await expect(page.getByTestId('timeline')).toContainText('1 → 0 instances');
  expect(errors).toEqual([]);
});

test('the dashboard is served with the strict content security policy', async ({ request }) => {
  const response = await request.get(`${gateway()}/system/ui/`);
  expect(response.status()).toBe(200);
  expect(response.headers()['content-security-policy']).toContain("script-src 'self'");
  expect(response.headers()['content-security-policy']).toContain("connect-src 'self'");
});
