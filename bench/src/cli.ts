#!/usr/bin/env node
// `pnpm bench`: starts the app, runs the scenarios side by side, prints the table and writes
// bench/results/<date>.json and bench/REPORT.md with its chart.
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { repoRoot } from './app.js';
import { renderTable, writeReport } from './report.js';
import { runBench, scenarioIds, type ScenarioId } from './run.js';
import { met } from './types.js';

function positiveInt(value: string): number {
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected an integer >= 1');
  return n;
}

const program = new Command('bench')
  .description('Runs the benchmark scenarios against the app started as `npm start` starts it, and writes the report')
  .option('--quick', 'fewer samples and votes (about 30 s)')
  .option('--votes <n>', 'votes for the throughput scenarios, per edge count in edges (default 20000, --quick 5000)', positiveInt)
  .option('--concurrency <n>', 'requests in flight during the throughput scenarios (default 64)', positiveInt)
  .option('--max-load-seconds <n>', 'stop a throughput load after this many seconds (default 45, --quick 15)', positiveInt)
  .option('--calls <n>', 'sequential calls per side in the overhead scenario (default 2000, --quick 500)', positiveInt)
  .option('--cold-starts <n>', 'cold start samples (default 8, --quick 3)', positiveInt)
  .option('--freshness-samples <n>', 'votes timed in the freshness scenario (default 200, --quick 50)', positiveInt)
  .option('--viewers <counts...>', 'socket.io viewers in the viewers scenario (default 500 1000 2000 5000, --quick 200)')
  .addOption(new Option('--only <scenarios...>', 'run only these scenarios').choices([...scenarioIds]))
  .addOption(new Option('--results-dir <dir>', 'where the JSON result goes').default(join(repoRoot, 'bench/results'), 'bench/results'))
  .addOption(
    new Option('--report <file>', 'the Markdown report (its chart is written beside it as .svg)').default(join(repoRoot, 'bench/REPORT.md'), 'bench/REPORT.md'),
  )
  .option('--no-write', 'print the table only')
  .option('--profile <dir>', 'run the gateway with --cpu-prof, writing .cpuprofile files into <dir>')
  .addHelpText('after', '\nExit status: 0 when every scenario that could run ran (targets missed included), 1 when one failed, 2 on bad arguments.')
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

program.parse();
const o = program.opts<{
  quick?: boolean;
  votes?: number;
  concurrency?: number;
  maxLoadSeconds?: number;
  calls?: number;
  coldStarts?: number;
  freshnessSamples?: number;
  viewers?: string[];
  only?: ScenarioId[];
  resultsDir: string;
  report: string;
  write: boolean;
  profile?: string;
}>();

const quick = o.quick === true;
const run = await runBench({
  only: o.only,
  votes: o.votes ?? (quick ? 5_000 : 20_000),
  concurrency: o.concurrency ?? 64,
  maxLoadSeconds: o.maxLoadSeconds ?? (quick ? 15 : 45),
  calls: o.calls ?? (quick ? 500 : 2_000),
  coldStarts: o.coldStarts ?? (quick ? 3 : 8),
  freshnessSamples: o.freshnessSamples ?? (quick ? 50 : 200),
  viewers: o.viewers?.map((v) => positiveInt(v)) ?? (quick ? [200] : undefined),
  viewerSeconds: quick ? 4 : 10,
  appNodeArgs: o.profile ? ['--cpu-prof', `--cpu-prof-dir=${o.profile}`] : [],
  log: (line) => process.stderr.write(`bench: ${line}\n`),
});

process.stdout.write(`\n${renderTable(run.scenarios)}\n\n`);
if (o.write) {
  const written = await writeReport(run, { resultsDir: o.resultsDir, reportPath: o.report });
  process.stdout.write(`wrote ${written.json}\n      ${written.report}\n      ${written.chart}\n`);
}
const missed = run.scenarios.flatMap((s) => s.metrics.filter((m) => met(m) === false).map((m) => `${s.id}: ${m.name}`));
if (missed.length) process.stdout.write(`targets not met: ${missed.join('; ')}\n`);
const failed = run.scenarios.filter((s) => s.status === 'failed');
for (const s of failed) process.stderr.write(`scenario ${s.id} failed: ${s.reason}\n`);
process.exitCode = failed.length ? 1 : 0;
