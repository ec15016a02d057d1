// The rules every page of the documentation keeps, as pure functions of its text: a width a
// reader's terminal and a diff can show, and links that lead somewhere.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** Width rule: no line over 120 characters, except a table row whose every cell is within 120. */
export const maxWidth = 120;

/** The cells of a Markdown table row (`|` inside inline code does not split). */
export function tableCells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  const cells: string[] = [];
  let cell = '';
  let code = false;
  for (const char of inner) {
    if (char === '`') code = !code;
    if (char === '|' && !code) {
      cells.push(cell.trim());
      cell = '';
    } else cell += char;
  }
  cells.push(cell.trim());
  return cells;
}

/** Lines that break the width rule, as `file:line: reason`. */
export function widthProblems(file: string, markdown: string): string[] {
  const problems: string[] = [];
  markdown.split('\n').forEach((line, index) => {
    const width = [...line].length;
    if (width <= maxWidth) return;
    if (line.trim().startsWith('|')) {
      const wide = tableCells(line).filter((cell) => [...cell].length > maxWidth);
      if (wide.length === 0) return;
      problems.push(`${file}:${index + 1}: a table cell of ${[...wide[0]!].length} characters (at most ${maxWidth})`);
    } else problems.push(`${file}:${index + 1}: ${width} characters (at most ${maxWidth})`);
  });
  return problems;
}

/** The text outside fenced code blocks. */
function unfenced(markdown: string): string {
  return markdown.replace(/^([ \t]*)(```|~~~)[\s\S]*?^\1\2[^\n]*$/gm, '');
}

/** The text outside fenced code blocks and inline code, where links are links. */
function prose(markdown: string): string {
  return unfenced(markdown).replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a page's headings, repeated ones numbered as GitHub numbers them. */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, heading] of unfenced(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = slug(heading!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/**
 * Relative links (and #anchors) of a page under `root` that point nowhere, as `file: target`.
 * Links with a scheme (https:, mailto:) are left to their sites.
 */
export function linkProblems(root: string, file: string, markdown: string, read = (path: string) => readFileSync(path, 'utf8')): string[] {
  const problems: string[] = [];
  for (const [, target] of prose(markdown).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue;
    const [path, anchor] = target!.split('#', 2) as [string, string | undefined];
    const resolved = path === '' ? join(root, file) : join(root, dirname(file), decodeURIComponent(path));
    if (relative(root, resolved).startsWith('..') || !existsSync(resolved)) {
      problems.push(`${file}: ${target} (no such file)`);
      continue;
    }
    if (anchor !== undefined && statSync(resolved).isFile() && resolved.endsWith('.md') && !anchors(read(resolved)).has(anchor)) {
      problems.push(`${file}: ${target} (no such heading)`);
    }
  }
  return problems;
}
