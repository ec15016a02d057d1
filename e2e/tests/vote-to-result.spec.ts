import { expect, test, type Page } from '@playwright/test';

const voteUrl = () => process.env.VOTE_URL!;
const resultUrl = () => process.env.RESULT_URL!;

async function totals(page: Page): Promise<number> {
  const text = (await page.getByTestId('total').textContent()) ?? '';
  if (/no votes/i.test(text)) return 0;
  return Number(text.replace(/[^\d]/g, ''));
}

test('a vote on the vote page shows on the result page within 2 s', async ({ browser }) => {
  const result = await (await browser.newContext()).newPage();
  await result.goto(resultUrl());
  await expect(result.getByTestId('connection')).toContainText('Live');
  await expect(result.getByTestId('name-a')).toHaveText('Cats');
  await expect(result.getByTestId('name-b')).toHaveText('Dogs');
  const before = await totals(result);

  const vote = await (await browser.newContext()).newPage();
  await vote.goto(voteUrl());
  await expect(vote.getByTestId('question')).toHaveText('Cats vs Dogs!');
  await vote.getByTestId('option-a').click();
  await expect(vote.getByTestId('option-a')).toHaveAttribute('aria-pressed', 'true');
  await expect(vote.getByTestId('tip')).toBeVisible();
  await expect(vote.getByTestId('instance')).toContainText('vote-');

  await expect.poll(() => totals(result), { timeout: 2_000 }).toBe(before + 1);
});

test('a voter can change their vote, and is counted once', async ({ browser }) => {
  const context = await browser.newContext();
  const result = await context.newPage();
  await result.goto(`${voteUrl()}/result/`);
  await expect(result.getByTestId('connection')).toContainText('Live');
  const before = await totals(result);

  const vote = await context.newPage();
  await vote.goto(voteUrl());
  await vote.getByTestId('option-b').click();
  await expect(vote.getByTestId('option-b')).toHaveAttribute('aria-pressed', 'true');
  await expect.poll(() => totals(result), { timeout: 2_000 }).toBe(before + 1);
  const percentB = await result.getByTestId('percent-b').textContent();

  await vote.getByTestId('option-a').click();
  await expect(vote.getByTestId('option-a')).toHaveAttribute('aria-pressed', 'true');
  await expect(vote.getByTestId('option-b')).not.toHaveAttribute('aria-pressed', 'true');
  await expect.poll(() => result.getByTestId('percent-b').textContent(), { timeout: 2_000 }).not.toBe(percentB);
  expect(await totals(result)).toBe(before + 1);

  // A reload still shows the voter's choice.
  await vote.reload();
  await expect(vote.getByTestId('option-a')).toHaveAttribute('aria-pressed', 'true');
});

test('two voters in two browser contexts are two votes', async ({ browser }) => {
  const result = await (await browser.newContext()).newPage();
  await result.goto(resultUrl());
  await expect(result.getByTestId('connection')).toContainText('Live');
  const before = await totals(result);
  for (const option of ['option-a', 'option-b']) {
    const page = await (await browser.newContext()).newPage();
    await page.goto(voteUrl());
    await page.getByTestId(option).click();
    await expect(page.getByTestId(option)).toHaveAttribute('aria-pressed', 'true');
  }
  await expect.poll(() => totals(result), { timeout: 2_000 }).toBe(before + 2);
});

test('bad input is shown as an error, not a crash', async ({ browser }) => {
  const context = await browser.newContext();
  // A forged voter cookie: the server refuses the vote and the page says why.
  await context.addCookies([{ name: 'voter_id', value: `${'0'.repeat(32)}.${'x'.repeat(22)}`, url: voteUrl() }]);
  const vote = await context.newPage();
  const errors: Error[] = [];
  vote.on('pageerror', (error) => errors.push(error));
  await vote.goto(voteUrl());
  await vote.getByTestId('option-a').click();
  await expect(vote.getByTestId('error')).toContainText('invalid signature');
  await expect(vote.getByTestId('option-a')).toBeEnabled();
  await expect(vote.getByTestId('question')).toHaveText('Cats vs Dogs!');
  expect(errors).toEqual([]);
});
