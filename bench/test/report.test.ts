import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatValue, renderMarkdown, renderSvg, renderTable, resultFileName, tableRows, writeReport } from '../src/report.js';
import { met, type BenchRun } from '../src/types.js';

const run: BenchRun = {
  startedAt: '2026-11-27T00:50:12.345Z',
  durationMs: 61_000,
  machine: { cpus: 2, model: 'Test CPU', node: 'v20.19.0', platform: 'linux x64', loadAverage: [1, 0.5, 0.25], memoryMb: 4096 },
  settings: { votes: 1000 },
  scenarios: [
    {
      id: 'call-overhead',
      title: 'Call overhead',
      status: 'ok',
      metrics: [
        { name: 'through the gateway, median', value: 1.5, unit: 'ms', floor: { name: 'instance directly', value: 0.7 } },
        { name: 'overhead, median', value: 0.8, unit: 'ms', target: { op: '<', value: 1 } },
      ],
    },
    {
      id: 'throughput-embedded',
      title: 'Throughput',
      status: 'ok',
      metrics: [
        { name: 'votes accepted per second', value: 1234, unit: 'votes/s', target: { op: '>=', value: 5000 } },
        { name: 'all accepted votes recorded after the load stopped', value: 30_000, unit: 'ms', missing: true, target: { op: '<', value: 2000 } },
      ],
    },
    { id: 'cold-start-docker', title: 'Cold start, docker', status: 'not run', reason: 'Docker Engine not reachable', metrics: [] },
    { id: 'freshness', title: 'Freshness', status: 'failed', reason: 'socket <closed> & "gone"', metrics: [] },
  ],
};

describe('targets', () => {
  it('compares a figure with its target', () => {
    expect(met({ name: 'x', value: 0.8, unit: 'ms', target: { op: '<', value: 1 } })).toBe(true);
    expect(met({ name: 'x', value: 1, unit: 'ms', target: { op: '<', value: 1 } })).toBe(false);
    expect(met({ name: 'x', value: 1.2, unit: 'x', target: { op: '<=', value: 1.2 } })).toBe(true);
    expect(met({ name: 'x', value: 5000, unit: 'votes/s', target: { op: '>=', value: 5000 } })).toBe(true);
    expect(met({ name: 'x', value: 1, unit: 'votes', target: { op: '=', value: 0 } })).toBe(false);
    expect(met({ name: 'x', value: 1, unit: 'ms' })).toBeUndefined();
  });

  it('formats figures with their units', () => {
    expect(formatValue(1234.5, 'votes/s')).toBe('1,235 votes/s');
    expect(formatValue(0.834, 'ms')).toBe('0.83 ms');
    expect(formatValue(1.35, 'x')).toBe('1.35x');
    expect(formatValue(30_000, 'ms', true)).toBe('not reached');
  });
});

describe('table', () => {
  it('has one row per figure, the target and the verdict beside it, and one row per scenario not run', () => {
    const rows = tableRows(run.scenarios);
    expect(rows).toHaveLength(6);
    expect(rows[0]).toMatchObject({ scenario: 'call-overhead', figure: '1.5 ms', floor: 'instance directly: 0.7 ms', target: '', verdict: '' });
    expect(rows[1]).toMatchObject({ figure: '0.8 ms', target: '< 1 ms', verdict: 'met' });
    expect(rows[2]).toMatchObject({ figure: '1,234 votes/s', target: '≥ 5,000 votes/s', verdict: 'NOT met' });
    expect(rows[3]).toMatchObject({ figure: 'not reached', verdict: 'NOT met' });
    expect(rows[4]).toMatchObject({ scenario: 'cold-start-docker', measure: 'not run', verdict: 'Docker Engine not reachable' });
    expect(rows[5]).toMatchObject({ scenario: 'freshness', measure: 'failed' });
    const text = renderTable(run.scenarios);
    expect(text.split('\n')).toHaveLength(2 + 6);
    expect(text).toMatch(/^scenario\s+measure\s+figure\s+compared with\s+target\s+verdict$/m);
  });

  it("shows a scenario's note as a row after its figures", () => {
    const edges = {
      id: 'edges',
      title: 'Edges',
      status: 'ok' as const,
      metrics: [{ name: 'votes accepted per second, 1 edge', value: 900, unit: 'votes/s' }],
      note: '2 cores, 99% busy',
    };
    expect(tableRows([edges])).toEqual([
      expect.objectContaining({ measure: 'votes accepted per second, 1 edge', figure: '900 votes/s' }),
      { scenario: 'edges', measure: 'note', figure: '', floor: '', target: '', verdict: '2 cores, 99% busy' },
    ]);
    expect(renderMarkdown({ ...run, scenarios: [edges] })).toContain('| edges | note |  |  |  | 2 cores, 99% busy |');
  });
});

describe('report', () => {
  it('writes Markdown with the table, the chart and a link to the raw figures', () => {
    const md = renderMarkdown(run, { chart: 'REPORT.svg', json: 'results/x.json' });
    expect(md).toMatch(/^# Benchmarks$/m);
    expect(md).toContain('![Figures against their targets and floors](REPORT.svg)');
    expect(md).toContain('| throughput-embedded | votes accepted per second | 1,234 votes/s |  | ≥ 5,000 votes/s | **NOT met** |');
    expect(md).toContain('| cold-start-docker | not run |  |  |  | Docker Engine not reachable |');
    expect(md).toContain('*not run*: Docker Engine not reachable');
    expect(md).toContain('[x.json](results/x.json)');
  });

  it('draws a well-formed SVG: a panel per figure with a target or floor, scenarios not run listed', () => {
    const svg = renderSvg(run);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/font-weight="bold">(call-overhead|throughput-embedded):/g)).toHaveLength(4);
    expect(svg).toContain('fill="#d0392b"'); // a target not met is red
    expect(svg).toContain('fill="#2e9d48"'); // a target met is green
    expect(svg).toContain('stroke-dasharray'); // target lines
    expect(svg).toContain('cold-start-docker: Docker Engine not reachable');
    expect(svg).toContain('socket &lt;closed&gt; &amp; &quot;gone&quot;');
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
  });

  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('writes results/<date>.json, the report and its chart beside it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bench-report-'));
    dirs.push(dir);
    expect(resultFileName(run.startedAt)).toBe('2026-11-27T00-50-12Z.json');
    const written = await writeReport(run, { resultsDir: join(dir, 'results'), reportPath: join(dir, 'REPORT.md') });
    expect(written).toEqual({ json: join(dir, 'results/2026-11-27T00-50-12Z.json'), report: join(dir, 'REPORT.md'), chart: join(dir, 'REPORT.svg') });
    expect(JSON.parse(await readFile(written.json, 'utf8'))).toEqual(run);
    expect(await readFile(written.report, 'utf8')).toContain('](REPORT.svg)');
    expect(await readFile(written.report, 'utf8')).toContain('(results/2026-11-27T00-50-12Z.json)');
    expect((await readdir(dir)).sort()).toEqual(['REPORT.md', 'REPORT.svg', 'results']);
  });
});
