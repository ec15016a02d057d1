import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Browser } from '@playwright/test';
import { repoRoot, waitUntil } from '@platform/test-services';
import { processesMentioning, readmeCommands, shell, type Shell } from './shell.js';

// Every command the README shows, walked as a newcomer meets it: a fresh clone in a private
// folder (mode 700, as root's home), the README's order, default settings, npm alone. A command
// added to the README must be walked here, or excluded with the reason.
const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

const notWalked: Record<string, string> = {
  'npm test': 'the command that runs this walk',
  'npm run bench': 'the full benchmark takes minutes; its quick form below is walked',
  'npm run bench -- --only throughput --votes 50000': 'a longer run of the walked benchmark',
  'npm run bench -- --profile /tmp/prof': 'the walked benchmark with a profiler attached',
  'infra/scripts/secrets.sh >/dev/null': 'part of the by-hand form of npm run stack:deploy, which is walked',
  'VOTING_SECRETS=$PWD/.secrets RUNTIME=swarm STACK_NAME=voting GATEWAY_REPLICAS=1 DOCKER_GID=$(stat -c %g /var/run/docker.sock) docker stack deploy --resolve-image never -c docker-compose.yml voting':
    'the by-hand form of npm run stack:deploy, which is walked',
  'export DATABASE_URL=postgres://user:password@127.0.0.1:5432/voting':
    'needs a PostgreSQL server of your own; these very processes (roles, settings) are run by apps/gateway/test/controller-failover.test.ts',
  'GATEWAY_ROLE=controller PORT=9101 FUNCTION_GATEWAY_URL=http://127.0.0.1:8080 node apps/gateway/dist/main.js &':
    'needs a PostgreSQL server of your own; these very processes (roles, settings) are run by apps/gateway/test/controller-failover.test.ts',
  'GATEWAY_ROLE=controller PORT=9102 FUNCTION_GATEWAY_URL=http://127.0.0.1:8080 node apps/gateway/dist/main.js &':
    'needs a PostgreSQL server of your own; these very processes (roles, settings) are run by apps/gateway/test/controller-failover.test.ts',
  'GATEWAY_ROLE=edge PORT=8080 RESULT_PORT=8081 node apps/gateway/dist/main.js &':
    'needs a PostgreSQL server of your own; these very processes (roles, settings) are run by apps/gateway/test/controller-failover.test.ts',
  'docker swarm join-token worker': 'needs a second machine to join',
  'docker swarm join --token SWMTKN-... MANAGER_IP:2377': 'needs a second machine to join',
};

const walked = new Set<string>();
const ports = { vote: 8080, result: 8081 };
const voteUrl = `http://127.0.0.1:${ports.vote}`;

let folder: string;
let app: string;
let sh: Shell;

test.beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'readme-walk-'));
  chmodSync(folder, 0o700);
  // Names of its own for the Compose project (the clone's folder name) and the stack, so that
  // the walk never touches a deployment of the same machine; ports and all else are the defaults.
  app = join(folder, `readme-walk-${process.pid}`);
  execFileSync('git', ['clone', '--quiet', repoRoot, app]);
  sh = shell(app, undefined, { STACK_NAME: `readme-walk-${process.pid}` });
});

test.afterAll(async () => {
  // Whatever a failed step left: the stack, the compose project, processes of the clone.
  await sh.run('npm run stack:rm -- --volumes', { timeoutMs: 240_000 });
  await sh.run('infra/scripts/compose.sh down -v', { timeoutMs: 120_000 });
  const left = processesMentioning(app);
  for (const line of left.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(line.split(' ')[0]), 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(folder, { recursive: true, force: true });
});

/**
 * Runs a README command in the clone and expects exit 0; returns what it printed, without the
 * lines npm prints about the script it runs.
 */
async function walk(command: string, { timeoutMs, as = command }: { timeoutMs?: number; as?: string } = {}): Promise<string> {
  const ran = await sh.run(command, { timeoutMs });
  expect(ran.code, `${command}\n${ran.stdout}\n${ran.stderr}`).toBe(0);
  walked.add(as);
  return ran.stdout
    .split('\n')
    .filter((line) => !line.startsWith('> '))
    .join('\n')
    .trim();
}

/** Votes through the page in Chromium and sees it on the result page. */
async function voteInBrowser(browser: Browser, url: string, resultUrl: string): Promise<void> {
  const context = await browser.newContext();
  const result = await context.newPage();
  await result.goto(resultUrl);
  await expect(result.getByTestId('connection')).toContainText('Live', { timeout: 15_000 });
  const vote = await context.newPage();
  await vote.goto(url);
  await expect(vote.getByTestId('question')).toHaveText('Cats vs Dogs!');
  await vote.getByTestId('option-b').click();
  await expect(vote.getByTestId('option-b')).toHaveAttribute('aria-pressed', 'true');
  await expect(result.getByTestId('total')).not.toContainText(/no votes/i, { timeout: 10_000 });
  await context.close();
}

test('the README shows no command that this walk leaves out without a reason', () => {
  const commands = readmeCommands(readme);
  expect(commands).toContain('npm start');
  const unknown = commands.filter((c) => !(c in notWalked) && !walkedCommands.includes(c));
  expect(unknown, 'README commands neither walked nor excluded').toEqual([]);
});

// The commands this walk runs, in the README's order (checked against the README above).
const walkedCommands = [
  'npm start',
  'npm run images',
  'infra/scripts/compose.sh up',
  'infra/scripts/compose.sh down',
  'npm run stack:deploy',
  'npm run stack:rm',
  'npm run fn -- list',
  'npm run fn -- invoke vote',
  'npm run fn -- invoke results/options',
  `npm run fn -- invoke vote --data '{"vote":"a"}'`,
  `npm run fn -- invoke vote --async --data '{"vote":"b"}'`,
  'npm run fn -- calls <id>',
  'npm run fn -- scale vote 2',
  'npm run fn -- logs vote --tail 20',
  'npm run fn -- new hello --lang python',
  'npm run fn -- deploy functions/hello',
  'npm run fn -- rm hello',
  'npm run seed',
  'npm run seed -- --votes 20000 --concurrency 64',
  'npm run seed -- --mode json --voters pool:1000 --ratio 1:1 --url http://localhost:8080',
  'npm run bench -- --quick --no-write',
];

test.describe
  .serial('the README walked on a fresh clone', () => {
    test('npm start from a private folder: both pages answer, votes count, fn and seed work at default settings; Ctrl-C stops everything', async ({
      browser,
    }) => {
      test.setTimeout(600_000);
      const started = Date.now();
      const start = sh.start('npm start');
      let stopped: number | null | undefined;
      await waitUntil(() => start.output().includes('Press Ctrl-C'), {
        timeoutMs: 300_000,
        intervalMs: 200,
        what: `npm start to be ready:\n${start.output()}`,
      }).catch((error: Error) => {
        throw new Error(`${error.message}\n${start.output()}`);
      });
      for (const url of [`${voteUrl}/`, `http://127.0.0.1:${ports.result}/`]) expect((await fetch(url)).status, url).toBe(200);
      console.log(`clean clone in a mode-700 folder to both pages answering: ${((Date.now() - started) / 1_000).toFixed(1)} s`);
      walked.add('npm start');
      try {
        await voteInBrowser(browser, `${voteUrl}/`, `http://127.0.0.1:${ports.result}/`);
        expect(await walk('npm run fn -- list')).toMatch(/^vote\s+warm/m);
        expect(JSON.parse(await walk('npm run fn -- invoke vote'))).toEqual({ question: 'Cats vs Dogs!', options: { a: 'Cats', b: 'Dogs' } });
        expect(JSON.parse(await walk('npm run fn -- invoke results/options'))).toEqual({ a: 'Cats', b: 'Dogs' });
        expect(JSON.parse(await walk(`npm run fn -- invoke vote --data '{"vote":"a"}'`))).toMatchObject({ vote: 'a' });
        const callId = await walk(`npm run fn -- invoke vote --async --data '{"vote":"b"}'`);
        expect(callId).toMatch(/^[0-9a-f-]{36}$/);
        await waitUntil(async () => (await sh.run(`npm run fn -- calls ${callId}`)).stdout.includes('succeeded'), {
          timeoutMs: 15_000,
          what: 'the async call to succeed',
        });
        await walk(`npm run fn -- calls ${callId}`, { as: 'npm run fn -- calls <id>' });
        await walk('npm run fn -- scale vote 2');
        expect(await walk('npm run fn -- logs vote --tail 20')).not.toBe('');
        // A workshop's live deploy, with nothing restarted: written, deployed, called, removed.
        const hello = () =>
          fetch(`${voteUrl}/function/hello`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"workshop"}' });
        expect(await walk('npm run fn -- new hello --lang python')).toContain(`created ${join(app, 'functions', 'hello')} (python)`);
        expect(await walk('npm run fn -- deploy functions/hello')).toContain('hello: deployed');
        expect(await (await hello()).json()).toMatchObject({ greeting: 'Hello, workshop!' });
        expect(await walk('npm run fn -- rm hello')).toContain('hello: removed');
        expect((await hello()).status).toBe(404);
        // The seed's defaults are the original's load (form posts, a new voter each, 50 at once,
        // one address): exit 0 means every vote was accepted.
        for (const seed of [
          'npm run seed',
          'npm run seed -- --votes 20000 --concurrency 64',
          'npm run seed -- --mode json --voters pool:1000 --ratio 1:1 --url http://localhost:8080',
        ]) {
          console.log(`${seed}:\n${(await walk(seed)).split('\n').slice(-14).join('\n')}`);
        }
      } finally {
        // As a terminal's Ctrl-C: npm itself ends by the signal once the app it runs has stopped.
        stopped = await start.ctrlC();
      }
      expect([0, 130, null]).toContain(stopped); // ended by Ctrl-C, as in a terminal, not by a failure
      expect(start.output()).toContain('SIGINT: stopping');
      await waitUntil(() => processesMentioning(app) === '', { timeoutMs: 15_000, what: `nothing of the clone left running:\n${processesMentioning(app)}` });
    });

    test('npm run images, then compose up and down', async ({ browser }) => {
      test.setTimeout(600_000);
      expect(await walk('npm run images')).toMatch(/voting\/gateway:latest/);
      const up = sh.start('infra/scripts/compose.sh up');
      try {
        await waitUntil(async () => (await fetch(`${voteUrl}/healthz`).catch(() => undefined))?.ok === true, {
          timeoutMs: 300_000,
          intervalMs: 500,
          what: 'compose up to answer',
        }).catch((error: Error) => {
          throw new Error(`${error.message}\n${up.output().slice(-3_000)}`);
        });
        walked.add('infra/scripts/compose.sh up');
        await voteInBrowser(browser, `${voteUrl}/`, `http://127.0.0.1:${ports.result}/`);
      } finally {
        await up.ctrlC();
      }
      await walk('infra/scripts/compose.sh down', { timeoutMs: 180_000 });
      expect(existsSync(join(app, '.secrets', 'postgres-password'))).toBe(true);
    });

    test('npm run stack:deploy, then npm run stack:rm', async ({ browser }) => {
      test.setTimeout(600_000);
      await walk('npm run stack:deploy', { timeoutMs: 400_000 });
      await voteInBrowser(browser, `${voteUrl}/`, `http://127.0.0.1:${ports.result}/`);
      await walk('npm run stack:rm', { timeoutMs: 240_000 });
    });

    test('npm run bench, quick', async () => {
      test.setTimeout(900_000);
      const out = await walk('npm run bench -- --quick --no-write', { timeoutMs: 840_000 });
      expect(out).toMatch(/throughput-embedded/);
    });

    test("npm start as a normal user too, from a clone in that user's private home", async () => {
      test.setTimeout(600_000);
      // As root, a user of its own is made for this (the walk runs as a normal user otherwise).
      const user = process.getuid?.() === 0 ? 'voting-newcomer' : undefined;
      let home = folder;
      let madeUser = false;
      if (user) {
        madeUser = spawnSync('id', [user]).status !== 0;
        if (madeUser) execFileSync('useradd', ['--create-home', '--shell', '/bin/bash', user]);
        home = execFileSync('bash', ['-c', `getent passwd ${user} | cut -d: -f6`], { encoding: 'utf8' }).trim();
        execFileSync('chmod', ['700', home]);
        execFileSync('rm', ['-rf', join(home, 'app')]);
        execFileSync('git', ['clone', '--quiet', repoRoot, join(home, 'app')]);
        execFileSync('chown', ['-R', `${user}:${user}`, join(home, 'app')]);
      }
      const clone = user ? join(home, 'app') : app;
      const as = user ? shell(clone, user) : sh;
      const start = as.start('npm start');
      try {
        await waitUntil(() => start.output().includes('Press Ctrl-C'), { timeoutMs: 400_000, intervalMs: 200, what: 'npm start to be ready' }).catch(
          (error: Error) => {
            throw new Error(`${error.message}\n${start.output()}`);
          },
        );
        for (const url of [`${voteUrl}/`, `http://127.0.0.1:${ports.result}/`]) expect((await fetch(url)).status, url).toBe(200);
        const seed = await as.run('npm run seed -- --votes 500');
        expect(seed.code, `${seed.stdout}\n${seed.stderr}`).toBe(0);
      } finally {
        await start.ctrlC();
      }
      await waitUntil(() => processesMentioning(clone) === '', {
        timeoutMs: 15_000,
        what: `nothing of the user's clone left running:\n${processesMentioning(clone)}`,
      });
      if (user) execFileSync('rm', ['-rf', join(home, 'app')]);
      if (madeUser) execFileSync('userdel', ['--remove', user!]);
    });

    test('walked every command it names', () => {
      expect([...walked].filter((c) => walkedCommands.includes(c)).sort()).toEqual([...walkedCommands].sort());
    });
  });
