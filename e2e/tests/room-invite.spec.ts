import { expect, test, type Locator } from '@playwright/test';
// CommonJS typed as an ES module: the decoder is its `default`.
import jsqr from 'jsqr';
import { PNG } from 'pngjs';

const voteUrl = () => `${process.env.VOTE_URL!}/`;

/** What a phone's camera would read: the QR code decoded from the pixels the page shows. */
async function scan(qr: Locator): Promise<string | undefined> {
  const png = PNG.sync.read(await qr.screenshot());
  return jsqr.default(new Uint8ClampedArray(png.data), png.width, png.height)?.data;
}

test('the result page opened with ?join shows the vote URL and a QR code of it, large enough for a projector', async ({ page }) => {
  await page.goto(`${process.env.RESULT_URL!}/?join`);
  const invite = page.getByTestId('invite');
  await expect(invite.getByTestId('invite-url')).toHaveText(voteUrl());
  const qr = invite.getByTestId('invite-qr');
  const box = (await qr.boundingBox())!;
  // Most of the screen's height (1280×720 here): scannable from the back of a room.
  expect(box.height).toBeGreaterThan(0.6 * page.viewportSize()!.height);
  expect(await scan(qr)).toBe(voteUrl());
  await page.keyboard.press('Escape');
  await expect(invite).toBeHidden();
  // The live results are under it, as before.
  await expect(page.getByTestId('connection')).toContainText('Live');
});

test('the dashboard shows the QR code of the vote URL at the press of a button', async ({ page }) => {
  await page.goto(`${process.env.VOTE_URL!}/system/ui/`);
  await page.getByTestId('invite-open').click();
  const invite = page.getByTestId('invite');
  await expect(invite.getByTestId('invite-url')).toHaveText(voteUrl());
  expect(await scan(invite.getByTestId('invite-qr'))).toBe(voteUrl());
  await invite.getByTestId('invite-close').click();
  await expect(invite).toBeHidden();
});
