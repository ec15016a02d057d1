import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Browser } from '@playwright/test';
import { repoRoot, waitUntil } from '@platform/test-services';
import { processesMentioning, readmeCommands, shell, type Shell } from './shell.js';

// Every command the README shows, and those of the pages a newcomer follows from it (the workshop
// run-sheet, Docker and Swarm, troubleshooting), walked as a newcomer meets them: a fresh clone in
// a private folder (mode 700, as root's home), their order, default settings, npm alone. A command
// added to them must be walked here, or excluded with the reason.
const walkedPages = ['README.md', 'docs/workshop.md', 'docs/swarm.md', 'docs/troubleshooting.md'];
const pages = walkedPages.map((page) => readFileSync(join(repoRoot, page), 'utf8')).join('\n');
const threeNodes = 'the three-node recipe needs three machines; a stack on two nodes is tested by e2e/two-node-tests';
const undo = 'undoes what the test run set up, which the suites after this one still use';

const notWalked: Record<string, string> = {
  'npm test': 'the command that runs this walk',
  'infra/scripts/secrets.sh >/dev/null': 'part of the by-hand form of npm run stack:deploy, which is walked',
  'VOTING_SECRETS=$PWD/.secrets RUNTIME=swarm STACK_NAME=voting GATEWAY_REPLICAS=1 DOCKER_GID=$(. infra/scripts/docker-socket.sh && docker_socket_gid /var/run/docker.sock) docker stack deploy --resolve-image never -c docker-compose.yml voting':
    'the by-hand form of npm run stack:deploy, which is walked',
  'docker swarm init --advertise-addr 10.0.0.5': threeNodes,
  'docker swarm join-token worker': threeNodes,
  'docker swarm join --token SWMTKN-... 10.0.0.5:2377': threeNodes,
  'docker node update --label-add voting.data=true worker1': threeNodes,
  'docker save voting/gateway:latest voting/fn-vote:latest voting/fn-record-vote:latest voting/fn-results:latest | ssh worker1 docker load': threeNodes,
  'docker save voting/gateway:latest voting/fn-vote:latest voting/fn-record-vote:latest voting/fn-results:latest | ssh worker2 docker load': threeNodes,
  'EXTRA_COMPOSE_FILE=$PWD/swarm-3-nodes.yml GATEWAY_REPLICAS=3 PUBLIC_HOST=10.0.0.5 NO_BUILD=1 npm run stack:deploy': threeNodes,
  'docker swarm leave --force': undo,
  'infra/scripts/two-node-swarm.sh down': `${undo}; e2e/two-node-setup.ts runs it after the two-node suite`,
  'ip netns del vnode1': undo,
  'ip netns del vnode2': undo,
  'ip link del vbr0': undo,
  "docker image rm $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^voting/')": undo,
  'kill $(cat /var/run/docker.pid)': undo,
  'apt-get remove redis-server chromium apache2-utils docker.io docker-compose postgresql-15': undo,
  'userdel voting-newcomer': `${undo}; the normal-user test below removes the user it made`,
  'rm -rf .data .secrets .tools /var/lib/serverless-voting': undo,
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
  // npx runs the clone's own fn or fails: it never fetches a package of that name instead.
  sh = shell(app, undefined, { STACK_NAME: `readme-walk-${process.pid}`, npm_config_yes: 'false' });
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

// Break: a command added to one of the walked pages and to neither list below.
test('the README and the pages it leads to show no command that this walk leaves out without a reason', () => {
  const commands = readmeCommands(pages);
  for (const command of ['npm start', 'npx fn new hello --lang python', 'npm run stack:deploy', "ss -ltnp 'sport = :8080'"])
    expect(commands).toContain(command);
  const unknown = commands.filter((c) => !(c in notWalked) && !walkedCommands.includes(c));
  expect(unknown, 'commands neither walked nor excluded').toEqual([]);
  // An exclusion names a command the pages still show.
  expect(Object.keys(notWalked).filter((c) => !commands.includes(c))).toEqual([]);
});

const helloCurl = `curl -H 'content-type: application/json' -d '{"name":"workshop"}' http://localhost:8080/function/hello`;
const dockerGid = 'export DOCKER_GID=$(. infra/scripts/docker-socket.sh && docker_socket_gid /var/run/docker.sock)';
const publicUrl = 'HOST=0.0.0.0 PUBLIC_URL=http://192.168.1.20:8080/ npm start';
// The commands this walk runs, in the pages' order (checked against the pages above), and the
// commands of docs/cli.md and docs/benchmarks.md it runs besides.
const walkedCommands = [
  'npm start',
  'npx fn status',
  'npx fn list',
  'npm run seed',
  'HOST=0.0.0.0 npm start',
  'npx fn new hello --lang python',
  'npx fn deploy functions/hello',
  helloCurl,
  'npx fn rm hello',
  'npm run stack:deploy',
  'npm run stack:rm',
  'npm run images',
  'npm run compose:up',
  'npm run compose:down',
  "ss -ltnp 'sport = :8080'",
  'lsof -nP -iTCP:8080 -sTCP:LISTEN',
  'PORT=8090 RESULT_PORT=8091 npm start',
  publicUrl,
  dockerGid,
  'npm run stack:rm -- --volumes',
  'npm run compose:down -- -v',
  'npx fn invoke vote',
  'npx fn invoke results/options',
  `npx fn invoke vote --data '{"vote":"a"}'`,
  `npx fn invoke vote --async --data '{"vote":"b"}'`,
  'npx fn calls <id>',
  'npx fn scale vote 2',
  'npx fn logs vote --tail 20',
  'npm run seed -- --votes 20000 --concurrency 64',
  'npm run seed -- --mode json --voters pool:1000 --ratio 1:1 --url http://localhost:8080',
  'npm run bench -- --quick --no-write',
];

/** Starts a long-running command of the pages and waits until the app it runs says it is ready. */
async function startApp(command: string, as: Shell = sh): Promise<ReturnType<Shell['start']>> {
  const start = as.start(command);
  await waitUntil(() => start.output().includes('Press Ctrl-C'), {
    timeoutMs: 400_000,
    intervalMs: 200,
    what: `${command} to be ready`,
  }).catch(async (error: Error) => {
    await start.ctrlC();
    throw new Error(`${error.message}\n${start.output()}`);
  });
  return start;
}

/** Ctrl-C as in a terminal: the app stops, npm ends by the signal, nothing of the clone is left. */
async function stopApp(start: ReturnType<Shell['start']>, clone = app): Promise<void> {
  const stopped = await start.ctrlC();
  expect([0, 130, null]).toContain(stopped); // ended by Ctrl-C, as in a terminal, not by a failure
  expect(start.output()).toContain('SIGINT: stopping');
  await waitUntil(() => processesMentioning(clone) === '', { timeoutMs: 15_000, what: `nothing of the clone left running:\n${processesMentioning(clone)}` });
}

test.describe
  .serial('the README and the pages it leads to, walked on a fresh clone', () => {
    test('vote and watch: npm start from a private folder, both pages, fn and seed at default settings; Ctrl-C stops everything', async ({ browser }) => {
      test.setTimeout(600_000);
      const started = Date.now();
      const start = await startApp('npm start');
      for (const url of [`${voteUrl}/`, `http://127.0.0.1:${ports.result}/`]) expect((await fetch(url)).status, url).toBe(200);
      console.log(`clean clone in a mode-700 folder to both pages answering: ${((Date.now() - started) / 1_000).toFixed(1)} s`);
      walked.add('npm start');
      try {
        await voteInBrowser(browser, `${voteUrl}/`, `http://127.0.0.1:${ports.result}/`);
        expect(await walk('npx fn status')).toMatch(/vote/);
        expect(await walk('npx fn list')).toMatch(/^vote\s+warm/m);
        // The seed's defaults are the original's load (form posts, a new voter each, 50 at once,
        // one address): exit 0 means every vote was accepted.
        console.log(`npm run seed:\n${(await walk('npm run seed')).split('\n').slice(-14).join('\n')}`);
        // docs/cli.md's and docs/benchmarks.md's commands, on the same app.
        expect(JSON.parse(await walk('npx fn invoke vote'))).toEqual({ question: 'Cats vs Dogs!', options: { a: 'Cats', b: 'Dogs' } });
        expect(JSON.parse(await walk('npx fn invoke results/options'))).toEqual({ a: 'Cats', b: 'Dogs' });
        expect(JSON.parse(await walk(`npx fn invoke vote --data '{"vote":"a"}'`))).toMatchObject({ vote: 'a' });
        const callId = await walk(`npx fn invoke vote --async --data '{"vote":"b"}'`);
        expect(callId).toMatch(/^[0-9a-f-]{36}$/);
        await waitUntil(async () => (await sh.run(`npx fn calls ${callId}`)).stdout.includes('succeeded'), {
          timeoutMs: 15_000,
          what: 'the async call to succeed',
        });
        await walk(`npx fn calls ${callId}`, { as: 'npx fn calls <id>' });
        await walk('npx fn scale vote 2');
        expect(await walk('npx fn logs vote --tail 20')).not.toBe('');
        for (const seed of [
          'npm run seed -- --votes 20000 --concurrency 64',
          'npm run seed -- --mode json --voters pool:1000 --ratio 1:1 --url http://localhost:8080',
        ]) {
          console.log(`${seed}:\n${(await walk(seed)).split('\n').slice(-14).join('\n')}`);
        }
      } finally {
        await stopApp(start);
      }
    });

    test('run a workshop: HOST=0.0.0.0 npm start, then a live deploy with nothing restarted', async () => {
      test.setTimeout(600_000);
      const start = await startApp('HOST=0.0.0.0 npm start');
      walked.add('HOST=0.0.0.0 npm start');
      try {
        // Listening on every address, it prints a network URL besides loopback's (the walk itself
        // only ever connects to loopback).
        expect(start.output()).not.toContain('Only this machine can reach it');
        for (const url of [`${voteUrl}/`, `http://127.0.0.1:${ports.result}/?join`]) expect((await fetch(url)).status, url).toBe(200);
        const hello = () =>
          fetch(`${voteUrl}/function/hello`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"workshop"}' });
        expect(await walk('npx fn new hello --lang python')).toContain(`created ${join(app, 'functions', 'hello')} (python)`);
        expect(await walk('npx fn deploy functions/hello')).toContain('hello: deployed');
        expect(JSON.parse(await walk(helloCurl))).toMatchObject({ greeting: 'Hello, workshop!' });
        expect(await walk('npx fn rm hello')).toContain('hello: removed');
        expect((await hello()).status).toBe(404);
      } finally {
        await stopApp(start);
      }
    });

    test('deploy on Swarm: npm run stack:deploy, then npm run stack:rm', async ({ browser }) => {
      test.setTimeout(600_000);
      await walk('npm run stack:deploy', { timeoutMs: 400_000 });
      await voteInBrowser(browser, `${voteUrl}/`, `http://127.0.0.1:${ports.result}/`);
      await walk('npm run stack:rm', { timeoutMs: 240_000 });
    });

    test('Docker Compose: npm run images, then compose up and down', async ({ browser }) => {
      test.setTimeout(600_000);
      expect(await walk('npm run images')).toMatch(/voting\/gateway:latest/);
      try {
        await walk('npm run compose:up', { timeoutMs: 400_000 });
        await waitUntil(async () => (await fetch(`${voteUrl}/healthz`).catch(() => undefined))?.ok === true, {
          timeoutMs: 300_000,
          intervalMs: 500,
          what: 'compose up to answer',
        });
        await voteInBrowser(browser, `${voteUrl}/`, `http://127.0.0.1:${ports.result}/`);
      } finally {
        await walk('npm run compose:down', { timeoutMs: 180_000 });
      }
      expect(existsSync(join(app, '.secrets', 'postgres-password'))).toBe(true);
    });

    test('troubleshooting: the port holder, other ports, the URL shown, the socket group, stale data dropped', async () => {
      test.setTimeout(600_000);
      // The app holds 8080 while the port's holder is looked up, as when a start finds it taken.
      const shown = await startApp(publicUrl);
      walked.add(publicUrl);
      try {
        const answer = await (await fetch(`${voteUrl}/system/public-url`)).json();
        expect(answer).toMatchObject({ url: 'http://192.168.1.20:8080/' });
        expect(await walk("ss -ltnp 'sport = :8080'")).toContain(':8080');
        expect(await walk('lsof -nP -iTCP:8080 -sTCP:LISTEN')).toContain(':8080');
      } finally {
        await stopApp(shown);
      }
      const moved = await startApp('PORT=8090 RESULT_PORT=8091 npm start');
      walked.add('PORT=8090 RESULT_PORT=8091 npm start');
      try {
        for (const url of ['http://127.0.0.1:8090/', 'http://127.0.0.1:8091/']) expect((await fetch(url)).status, url).toBe(200);
      } finally {
        await stopApp(moved);
      }
      await walk(dockerGid);
      expect(await walk('npm run stack:rm -- --volumes', { timeoutMs: 240_000 })).toContain('is gone');
      await walk('npm run compose:down -- -v', { timeoutMs: 180_000 });
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
      const start = await startApp('npm start', as);
      try {
        for (const url of [`${voteUrl}/`, `http://127.0.0.1:${ports.result}/`]) expect((await fetch(url)).status, url).toBe(200);
        const seed = await as.run('npm run seed -- --votes 500');
        expect(seed.code, `${seed.stdout}\n${seed.stderr}`).toBe(0);
      } finally {
        await stopApp(start, clone);
      }
      if (user) execFileSync('rm', ['-rf', join(home, 'app')]);
      if (madeUser) execFileSync('userdel', ['--remove', user!]);
    });

    test('walked every command it names', () => {
      expect([...walked].filter((c) => walkedCommands.includes(c)).sort()).toEqual([...walkedCommands].sort());
    });
  });
