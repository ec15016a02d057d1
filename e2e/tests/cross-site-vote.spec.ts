import { createServer, type Server } from 'node:http';
import { expect, test, type Browser, type Page, type Request } from '@playwright/test';

const voteUrl = () => process.env.VOTE_URL!;

type Tally = { a: number; b: number };

/** The votes as the app counts them: the results function, read through the app. */
async function tally(page: Page): Promise<Tally> {
  const response = await page.request.get(`${voteUrl()}/function/results`);
  expect(response.status()).toBe(200);
  return (await response.json()) as Tally;
}

/** What a page runs to vote `b` in the app through its visitor's browser: a fetch that expects no answer, then a form that posts itself. */
const votingScript = (app: string) => `(() => {
  const form = document.createElement('form');
  form.method = 'post';
  form.action = '${app}/';
  form.innerHTML = '<input name="vote" value="b">';
  document.body.append(form);
  fetch('${app}/function/vote', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'vote=b' })
    .catch(() => {})
    .finally(() => form.submit());
})()`;

/** Another web site's page that runs the voting script as it opens. */
const votingPage = (app: string) => `<!doctype html><title>Win a prize</title><body><script>${votingScript(app)}</script></body>`;

/** Serves `html` on a free port of a loopback address: another origin than the app's. */
async function serve(html: string, host: string): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { url: `http://${host}:${(server.address() as { port: number }).port}/`, server };
}

/**
 * How the voting script's calls ended, in `page`, while `act` runs: the app's status, or the
 * browser's failure (another origin's answer to a no-cors fetch is kept from the page, and
 * blocked outright when it is JSON or HTML).
 */
async function outcomes(page: Page, act: () => Promise<unknown>): Promise<{ fetch: number | string; form: number | string }> {
  const outcome = (path: string) =>
    new Promise<number | string>((resolve) => {
      const ours = (request: Request) => request.url() === `${voteUrl()}${path}` && request.method() === 'POST';
      page.on('requestfinished', async (request) => ours(request) && resolve((await request.response())?.status() ?? 'no answer'));
      page.on('requestfailed', (request) => ours(request) && resolve(request.failure()?.errorText ?? 'failed'));
    });
  const fetched = outcome('/function/vote');
  const posted = outcome('/');
  await act();
  return { fetch: await fetched, form: await posted };
}

/** One vote from the app's own vote page, through its buttons: the control that the pipeline is moving. */
async function controlVote(browser: Browser, option: 'option-a' | 'option-b'): Promise<void> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(voteUrl());
  await page.getByTestId(option).click();
  await expect(page.getByTestId(option)).toHaveAttribute('aria-pressed', 'true');
  await page.context().close();
}

test.describe('votes from other web sites', () => {
  // The first votes of a fresh app wait for their functions' cold starts.
  test.setTimeout(60_000);
  const servers: Server[] = [];
  test.afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  // Break it catches: the call routes not checking Origin / Sec-Fetch-Site, so another site's page (another port: same-site;
  // another address: cross-site) votes through each visitor's browser, a new voter each time.
  test("another site's page cannot vote through its visitors' browsers", async ({ browser, page }) => {
    const before = await tally(page);
    const formAnswers: Array<number | string> = [];
    for (const host of ['127.0.0.1', '127.0.0.2']) {
      const foreign = await serve(votingPage(voteUrl()), host);
      servers.push(foreign.server);
      const visitor = await (await browser.newContext()).newPage();
      // The form post's answer shows; the fetch's is kept from the page, but it has ended before the control vote.
      formAnswers.push((await outcomes(visitor, () => visitor.goto(foreign.url))).form);
      await visitor.context().close();
    }
    // A vote from the app's own page, made after those: once it is counted, they had their time.
    await controlVote(browser, 'option-a');
    await expect.poll(async () => (await tally(page)).a, { timeout: 15_000 }).toBe(before.a + 1);
    expect((await tally(page)).b, 'votes for b from the other sites').toBe(before.b);
    expect(formAnswers).toEqual([403, 403]);
  });

  // Break it catches: a check that also refuses the app's own page (its no-referrer policy makes the browser send `Origin: null`).
  test('the same form post and fetch from the vote page are counted', async ({ browser, page }) => {
    const before = await tally(page);
    const voter = await (await browser.newContext()).newPage();
    await voter.goto(voteUrl());
    // The page's own fetch and form post: one voter (the fetch's answer sets its cookie), now for b.
    expect(await outcomes(voter, () => voter.evaluate(votingScript(voteUrl())))).toEqual({ fetch: 303, form: 303 });
    await expect.poll(async () => (await tally(page)).b, { timeout: 15_000 }).toBe(before.b + 1);
    await voter.context().close();
  });
});
