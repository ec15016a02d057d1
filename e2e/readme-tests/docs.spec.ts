import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { repoRoot } from '@platform/test-services';
import { anchors, linkProblems, maxWidth, slug, widthProblems } from './markdown.js';

// The README and every page under docs/: the width rule and relative links, read from the files
// themselves (no app needed). Runs with the README walk's config, which starts nothing for it.
const pages = [
  'README.md',
  ...readdirSync(join(repoRoot, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];
const text = (page: string) => readFileSync(join(repoRoot, page), 'utf8');

// Break: a 300-character line in docs/api.md, or a table row with one cell of 130 characters.
test(`no line of the README or docs/ is over ${maxWidth} characters, nor any table cell`, () => {
  expect(pages).toContain('docs/troubleshooting.md');
  expect(pages.flatMap((page) => widthProblems(page, text(page)))).toEqual([]);
});

// Break: a link to docs/nowhere.md, or to #no-such-heading, in the README.
test('every relative link of the README and docs/ leads to a file, and every #anchor to a heading', () => {
  expect(pages.flatMap((page) => linkProblems(repoRoot, page, text(page)))).toEqual([]);
});

// Break: a slug that keeps the backticks or the colon, or no numbering of a repeated heading.
test('the rules themselves: widths, table cells, anchors as GitHub makes them', () => {
  const long = 'x'.repeat(maxWidth + 1);
  expect(widthProblems('a.md', `ok\n${long}`)).toEqual([`a.md:2: ${maxWidth + 1} characters (at most ${maxWidth})`]);
  expect(widthProblems('a.md', `| ${'y'.repeat(100)} | ${'z'.repeat(100)} |`)).toEqual([]);
  expect(widthProblems('a.md', `| a | ${long} |`)).toHaveLength(1);
  expect(slug('Load testing (`npm run seed`)')).toBe('load-testing-npm-run-seed');
  expect(slug('The gateway tier: edges and a controller')).toBe('the-gateway-tier-edges-and-a-controller');
  expect([...anchors('# A\n## B\n## B\n```sh\n# not a heading\n```\n')]).toEqual(['a', 'b', 'b-1']);
  const files: Record<string, string> = { '/r/docs/x.md': '# Here\n' };
  const read = (path: string) => files[path]!;
  expect(linkProblems('/nonexistent-root', 'README.md', '[a](https://example.org/x) `[b](nowhere.md)`', read)).toEqual([]);
  expect(linkProblems('/nonexistent-root', 'README.md', '[a](nowhere.md)', read)).toEqual(['README.md: nowhere.md (no such file)']);
});
