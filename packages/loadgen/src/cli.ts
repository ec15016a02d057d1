#!/usr/bin/env node
// `pnpm seed`: sends votes to a running app and reports what came back.
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { formatSummary, runSeed, type SeedMode } from './seed.js';
import { parseRatio, parseVoters } from './stats.js';

function positiveInt(value: string): number {
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected an integer >= 1');
  return n;
}

function wrap<T>(parse: (text: string) => T) {
  return (value: string): T => {
    try {
      return parse(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

const program = new Command('seed')
  .description("Sends votes to the voting app (the original's seed-data tool) and reports rates, latency and errors")
  .option('-n, --votes <n>', 'votes to send', positiveInt, 3_000)
  .option('-c, --concurrency <n>', 'requests in flight at once', positiveInt, 50)
  .addOption(new Option('-r, --ratio <a:b>', 'weights of option a and option b').argParser(wrap(parseRatio)).default([2, 1], '2:1'))
  .option('-u, --url <url>', 'base URL of the vote side', 'http://127.0.0.1:8080')
  .addOption(
    new Option('--voters <policy>', '"new" (a new voter per vote, no cookie) or "pool:<n>" (n voters keeping their cookies)')
      .argParser(wrap(parseVoters))
      .default({ kind: 'new' }, 'new'),
  )
  .addOption(
    new Option('-m, --mode <mode>', 'form: POST / vote=a (303); json: POST /function/vote {"vote":"a"} (200)').choices(['form', 'json']).default('form'),
  )
  .option('--json', 'print the summary as JSON on stdout')
  .option('-q, --quiet', 'no progress bar')
  .addHelpText(
    'after',
    '\nExit status: 0 when every vote was accepted, 1 when any was rejected or failed, 2 on bad arguments.\nExamples:\n  npm run seed -- --votes 20000 --concurrency 64\n  npm run seed -- --mode json --voters pool:100 --ratio 1:1 --url http://localhost:8080',
  )
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

program.parse();
const options = program.opts<{
  votes: number;
  concurrency: number;
  ratio: [number, number];
  url: string;
  voters: ReturnType<typeof parseVoters>;
  mode: SeedMode;
  json?: boolean;
  quiet?: boolean;
}>();

try {
  new URL(options.url);
} catch {
  process.stderr.write(`--url: not a URL: ${options.url}\n`);
  process.exit(2);
}

const showBar = !options.quiet && process.stderr.isTTY === true;
const bar = new cliProgress.SingleBar(
  {
    format: 'votes {bar} {value}/{total} | {rate} votes/s | accepted {accepted} | errors {failed} | {duration}s',
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: false,
  },
  cliProgress.Presets.shades_classic,
);
if (showBar) bar.start(options.votes, 0, { rate: 0, accepted: 0, failed: 0 });

const controller = new AbortController();
process.once('SIGINT', () => {
  process.stderr.write('\ninterrupted: finishing the votes in flight\n');
  controller.abort();
});

const summary = await runSeed({
  url: options.url,
  votes: options.votes,
  concurrency: options.concurrency,
  ratio: options.ratio,
  voters: options.voters,
  mode: options.mode,
  signal: controller.signal,
  onTick: showBar ? (p) => bar.update(p.done, { rate: p.rate, accepted: p.accepted, failed: p.failed }) : undefined,
});
if (showBar) bar.stop();
process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatSummary(summary)}\n`);
if (summary.failed > 0 && !options.json) {
  process.stderr.write(`${summary.failed} of ${summary.sent} votes were not accepted\n`);
}
process.exitCode = summary.failed > 0 || controller.signal.aborted ? 1 : 0;
