// The run as a console table, a JSON file, a Markdown report and an SVG chart.
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { met, type BenchRun, type Metric, type ScenarioResult } from './types.js';

const opText = { '<': '<', '<=': '≤', '>=': '≥', '=': '=' } as const;

export function formatValue(value: number, unit: string, missing = false): string {
  if (missing) return 'not reached';
  const digits = Math.abs(value) >= 100 || Number.isInteger(value) ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  const text = value.toLocaleString('en-US', { minimumFractionDigits: 0, maximumFractionDigits: digits });
  return unit === 'x' ? `${text}x` : `${text} ${unit}`;
}

function targetText(metric: Metric): string {
  return metric.target ? `${opText[metric.target.op]} ${formatValue(metric.target.value, metric.unit)}` : '';
}

function verdict(metric: Metric): string {
  const ok = met(metric);
  return ok === undefined ? '' : ok ? 'met' : 'NOT met';
}

export interface Row {
  scenario: string;
  measure: string;
  figure: string;
  floor: string;
  target: string;
  verdict: string;
}

/** One row per figure, then the scenario's note; a scenario that did not run is one row saying why. */
export function tableRows(scenarios: ScenarioResult[]): Row[] {
  const rows: Row[] = [];
  for (const s of scenarios) {
    if (s.status !== 'ok') {
      rows.push({ scenario: s.id, measure: s.status, figure: '', floor: '', target: '', verdict: s.reason ?? '' });
      continue;
    }
    for (const m of s.metrics) {
      rows.push({
        scenario: s.id,
        measure: m.name,
        figure: formatValue(m.value, m.unit, m.missing),
        floor: m.floor ? `${m.floor.name}: ${formatValue(m.floor.value, m.unit)}` : '',
        target: targetText(m),
        verdict: verdict(m),
      });
    }
    if (s.note) rows.push({ scenario: s.id, measure: 'note', figure: '', floor: '', target: '', verdict: s.note });
  }
  return rows;
}

const headers: Row = { scenario: 'scenario', measure: 'measure', figure: 'figure', floor: 'compared with', target: 'target', verdict: 'verdict' };
const columns = Object.keys(headers) as Array<keyof Row>;

/** A plain-text table for the terminal. */
export function renderTable(scenarios: ScenarioResult[]): string {
  const rows = [headers, ...tableRows(scenarios)];
  const widths = columns.map((c) => Math.max(...rows.map((r) => (c === 'verdict' && r.measure !== 'measure' && r.figure === '' ? 0 : r[c].length))));
  const line = (r: Row) =>
    columns
      .map((c, i) => (i === columns.length - 1 ? r[c] : r[c].padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

const escapeCell = (text: string) => text.replaceAll('|', '\\|');

export function renderMarkdown(run: BenchRun, { chart, json }: { chart?: string; json?: string } = {}): string {
  const m = run.machine;
  const lines = [
    '# Benchmarks',
    '',
    `Written by \`pnpm bench\` on ${run.startedAt} (run took ${(run.durationMs / 1_000).toFixed(0)} s). Figures vary from run to run; the`,
    'machine and its load average at the start are below. Reproduce with `pnpm bench` (`pnpm bench --help` for the settings).',
    'What each change made for speed did, before and after: [CHANGES.md](CHANGES.md).',
    '',
    `Machine: ${m.cpus} × ${m.model}, ${m.memoryMb} MB, ${m.platform}, Node ${m.node}, load average ${m.loadAverage.map((l) => l.toFixed(2)).join(' / ')}.`,
    `Settings: ${Object.entries(run.settings)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(', ')}.`,
    '',
  ];
  if (chart) lines.push(`![Figures against their targets and floors](${chart})`, '');
  lines.push('| scenario | measure | figure | compared with | target | verdict |', '| --- | --- | --- | --- | --- | --- |');
  for (const r of tableRows(run.scenarios)) {
    lines.push(`| ${columns.map((c) => escapeCell(c === 'verdict' && r.verdict === 'NOT met' ? '**NOT met**' : r[c])).join(' | ')} |`);
  }
  lines.push('', '## Scenarios', '');
  for (const s of run.scenarios) {
    lines.push(`- **${s.id}**: ${s.title}.${s.status === 'ok' ? '' : ` *${s.status}*: ${s.reason ?? ''}`}`);
  }
  if (json) lines.push('', `Raw figures (percentiles, counts, settings): [${basename(json)}](${json}).`);
  return `${lines.join('\n')}\n`;
}

const escapeXml = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

/**
 * A chart readable at a glance: one panel per figure that has a target or a floor, with a bar
 * for the figure (green when it meets its target, red when not, blue without one), a grey bar for
 * its floor, and a dashed line at the target. Scenarios not run are listed at the bottom.
 */
export function renderSvg(run: BenchRun): string {
  const panels: Array<{ title: string; metric: Metric }> = [];
  for (const s of run.scenarios) {
    if (s.status !== 'ok') continue;
    for (const metric of s.metrics) if (metric.target || metric.floor) panels.push({ title: `${s.id}: ${metric.name}`, metric });
  }
  const notRun = run.scenarios.filter((s) => s.status !== 'ok').map((s) => wrap(`${s.id}: ${s.reason ?? s.status}`, 115));
  const width = 760;
  const left = 150;
  const barMax = width - left - 120;
  const panelHeight = 64;
  const top = 40;
  const notRunLines = notRun.flat();
  const height = top + panels.length * panelHeight + (notRunLines.length ? 24 + notRunLines.length * 16 : 0) + 16;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">pnpm bench, ${escapeXml(run.startedAt.slice(0, 16).replace('T', ' '))} UTC: figures vs targets (dashed) and floors (grey)</text>`,
  ];
  panels.forEach(({ title, metric }, i) => {
    const y = top + i * panelHeight;
    const values = [Math.abs(metric.value), metric.floor?.value ?? 0, metric.target?.value ?? 0];
    const scale = Math.max(...values) > 0 ? barMax / (Math.max(...values) * 1.05) : 0;
    const ok = met(metric);
    const color = ok === undefined ? '#3b78c4' : ok ? '#2e9d48' : '#d0392b';
    out.push(`<text x="10" y="${y + 12}" font-weight="bold">${escapeXml(title)}</text>`);
    const bar = (row: number, label: string, value: number, fill: string) => {
      const by = y + 18 + row * 20;
      out.push(
        `<text x="${left - 6}" y="${by + 12}" text-anchor="end">${escapeXml(label)}</text>`,
        `<rect x="${left}" y="${by}" width="${Math.max(1, value * scale).toFixed(1)}" height="16" fill="${fill}"/>`,
        `<text x="${left + Math.max(1, value * scale) + 4}" y="${by + 12}">${escapeXml(formatValue(value, metric.unit))}</text>`,
      );
    };
    bar(0, metric.missing ? 'not reached' : 'measured', Math.abs(metric.value), color);
    if (metric.floor) bar(1, metric.floor.name, metric.floor.value, '#9a9a9a');
    if (metric.target) {
      const x = left + metric.target.value * scale;
      out.push(
        `<line x1="${x.toFixed(1)}" y1="${y + 15}" x2="${x.toFixed(1)}" y2="${y + 58}" stroke="#222" stroke-width="1.5" stroke-dasharray="4 3"/>`,
        `<text x="${(x + 3).toFixed(1)}" y="${y + 58}" font-size="10">target ${escapeXml(targetText(metric))}</text>`,
      );
    }
  });
  if (notRunLines.length) {
    const y = top + panels.length * panelHeight + 12;
    out.push(`<text x="10" y="${y}" font-weight="bold">Not run, or failed</text>`);
    let line = 0;
    for (const lines of notRun) {
      for (const [i, text] of lines.entries()) out.push(`<text x="${i === 0 ? 10 : 24}" y="${y + 18 + line++ * 16}" fill="#555">${escapeXml(text)}</text>`);
    }
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Splits text into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(' ')) {
    if (current && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else current = current ? `${current} ${word}` : word;
  }
  if (current) lines.push(current);
  return lines;
}

/** `2026-11-27T00:50:12.345Z` → `2026-11-27T00-50-12Z` (no colons: valid on every file system). */
export function resultFileName(startedAt: string): string {
  return `${startedAt.replace(/\.\d+Z$/, 'Z').replaceAll(':', '-')}.json`;
}

export interface WrittenReport {
  json: string;
  report: string;
  chart: string;
}

/** Writes `<resultsDir>/<date>.json`, the Markdown report and its SVG chart beside it. */
export async function writeReport(run: BenchRun, { resultsDir, reportPath }: { resultsDir: string; reportPath: string }): Promise<WrittenReport> {
  const json = join(resultsDir, resultFileName(run.startedAt));
  const chart = join(dirname(reportPath), `${basename(reportPath, '.md')}.svg`);
  await mkdir(resultsDir, { recursive: true });
  await mkdir(dirname(reportPath), { recursive: true });
  await writeFile(json, `${JSON.stringify(run, null, 2)}\n`);
  await writeFile(chart, renderSvg(run));
  const rel = (path: string) => relative(dirname(reportPath), path) || basename(path);
  await writeFile(reportPath, renderMarkdown(run, { chart: rel(chart), json: rel(json) }));
  return { json, report: reportPath, chart };
}
