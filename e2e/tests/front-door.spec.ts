import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Browser, type Page } from '@playwright/test';
import { PNG } from 'pngjs';

const voteUrl = () => process.env.VOTE_URL!;
const resultUrl = () => process.env.RESULT_URL!;
// The README's picture: refreshed with UPDATE_SCREENSHOTS=1, else kept with the test results.
const picture = process.env.UPDATE_SCREENSHOTS
  ? join(import.meta.dirname, '..', '..', 'docs', 'front-door.png')
  : join(import.meta.dirname, '..', 'test-results', 'front-door.png');
const height = 760;

/** The three pages side by side, top-aligned on a white ground, in the order given. */
function sideBySide(shots: PNG[]): PNG {
  const out = new PNG({ width: shots.reduce((sum, shot) => sum + shot.width, 0), height: Math.max(...shots.map((shot) => shot.height)) });
  out.data.fill(255);
  let left = 0;
  for (const shot of shots) {
    PNG.bitblt(shot, out, 0, 0, shot.width, shot.height, left, 0);
    left += shot.width;
  }
  return out;
}

/** How many distinct colours a region holds: a blank or missing page has one. */
function colours(png: PNG, x0: number, width: number): number {
  const seen = new Set<number>();
  for (let y = 0; y < png.height; y += 4)
    for (let x = x0; x < x0 + width; x += 4) {
      const i = (png.width * y + x) * 4;
      seen.add((png.data[i]! << 16) | (png.data[i + 1]! << 8) | png.data[i + 2]!);
    }
  return seen.size;
}

async function open(browser: Browser, url: string, width: number): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width, height } })).newPage();
  await page.goto(url);
  return page;
}

// Break: a page left out of the picture (or placed over another), or a page that never went live
// (the result page without the votes, the dashboard without its connection).
test('the front door: the vote page, the result page and the dashboard side by side, after a few votes', async ({ browser, request }) => {
  test.setTimeout(120_000);
  const vote = await open(browser, `${voteUrl()}/`, 600);
  await expect(vote.getByTestId('question')).toHaveText('Cats vs Dogs!');
  const result = await open(browser, `${resultUrl()}/`, 600);
  await expect(result.getByTestId('connection')).toContainText('Live');
  const dashboard = await open(browser, `${voteUrl()}/system/ui/`, 1040);
  await expect(dashboard.getByTestId('connection')).toContainText('Live');

  for (const option of ['a', 'b', 'a', 'a', 'b']) expect((await request.post(`${voteUrl()}/function/vote`, { data: { vote: option } })).ok()).toBe(true);
  await vote.getByTestId('option-a').click();
  await expect(vote.getByTestId('option-a')).toHaveAttribute('aria-pressed', 'true');
  await expect(result.getByTestId('total')).not.toContainText(/no votes/i, { timeout: 30_000 });
  await expect(dashboard.getByTestId('function-record-vote').getByTestId('instance').first()).toBeVisible({ timeout: 30_000 });
  await dashboard.waitForTimeout(600); // let the newest instance finish fading in

  const shots = [vote, result, dashboard].map(async (page) => PNG.sync.read(await page.screenshot()));
  const [v, r, d] = await Promise.all(shots);
  const stitched = sideBySide([v!, r!, d!]);
  expect([stitched.width, stitched.height]).toEqual([600 + 600 + 1040, height]);
  // Each page's region is a page, not an empty ground.
  for (const [x0, width] of [
    [0, 600],
    [600, 600],
    [1200, 1040],
  ] as const)
    expect(colours(stitched, x0, width), `region at x=${x0}`).toBeGreaterThan(8);
  writeFileSync(picture, PNG.sync.write(stitched));
});
