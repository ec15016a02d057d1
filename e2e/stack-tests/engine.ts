// The Docker Engine API over its Unix socket: what the Swarm tests observe the stack through.
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** One Engine API call; `socket` is another engine's (a node of a test Swarm), else $DOCKER_SOCKET's. */
export function engine<T = unknown>(method: string, path: string, body?: unknown, socket = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock'): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        method,
        path: `/v1.41${path}`,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
          else resolve((text ? JSON.parse(text) : undefined) as T);
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const filters = (f: Record<string, string[]>) => `filters=${encodeURIComponent(JSON.stringify(f))}`;

export interface ServiceInfo {
  ID: string;
  Spec: {
    Name: string;
    Labels: Record<string, string>;
    Mode: { Replicated?: { Replicas: number }; ReplicatedJob?: object };
    TaskTemplate: {
      ContainerSpec: {
        Image: string;
        User: string;
        ReadOnly: boolean;
        Init: boolean;
        CapabilityDrop: string[];
        Env: string[];
        Secrets?: Array<{ File: { Name: string } }>;
        Mounts?: Array<{ Type: string }>;
      };
      Resources: { Limits: { MemoryBytes: number; NanoCPUs: number; Pids: number } };
      Networks: Array<{ Target: string }>;
    };
    EndpointSpec: { Mode: string };
  };
}

export interface TaskInfo {
  ID: string;
  CreatedAt: string;
  DesiredState: string;
  Status: { State: string; ContainerStatus?: { ContainerID?: string } };
}

export const services = (label: string) => engine<ServiceInfo[]>('GET', `/services?${filters({ label: [label] })}`);
export const functionServices = (stack: string, fn?: string) =>
  engine<ServiceInfo[]>(
    'GET',
    `/services?${filters({ label: [`serverless-platform.swarm.owner=${stack}-fn`, ...(fn ? [`serverless-platform.swarm.function=${fn}`] : [])] })}`,
  );
export const tasks = (service: string) => engine<TaskInfo[]>('GET', `/tasks?${filters({ service: [service] })}`);
export const runningTasks = async (service: string) => (await tasks(service)).filter((t) => t.DesiredState === 'running' && t.Status.State === 'running');
export const replicas = (service: ServiceInfo) => service.Spec.Mode.Replicated?.Replicas;

/** Everything of a stack still on the engine: services, containers, networks, volumes, secrets. */
export async function leftovers(stack: string): Promise<string[]> {
  const labels = [`com.docker.stack.namespace=${stack}`, `serverless-platform.swarm.owner=${stack}-fn`];
  const found: string[] = [];
  for (const label of labels) {
    const f = filters({ label: [label] });
    for (const s of await engine<Array<{ Spec: { Name: string } }>>('GET', `/services?${f}`)) found.push(`service ${s.Spec.Name}`);
    for (const c of await engine<Array<{ Names: string[] }>>('GET', `/containers/json?all=1&${f}`)) found.push(`container ${c.Names[0]}`);
    for (const n of await engine<Array<{ Name: string }>>('GET', `/networks?${f}`)) found.push(`network ${n.Name}`);
    for (const v of (await engine<{ Volumes: Array<{ Name: string }> | null }>('GET', `/volumes?${f}`)).Volumes ?? []) found.push(`volume ${v.Name}`);
    for (const s of await engine<Array<{ Spec: { Name: string } }>>('GET', `/secrets?${f}`)) found.push(`secret ${s.Spec.Name}`);
  }
  return found;
}

const root = join(import.meta.dirname, '../..');
const execFileAsync = promisify(execFile);

/** Runs the docker CLI; its standard output. */
async function docker(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { stdout } = await execFileAsync('docker', args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  return stdout;
}

/**
 * The stack's `votes` table, voter id -> vote. The database image need not hold a client (the
 * local PostgreSQL stand-in has no psql), so a throwaway container of the gateway's image on the
 * stack's network reads it with record-vote's own `pg` (this checkout, mounted read-only),
 * logging in with the password the controller was given (controllers run on the manager that
 * the docker CLI talks to).
 */
export async function votesTable(stack: string): Promise<Map<string, string>> {
  const [controller] = await runningTasks(`${stack}_controller`);
  const container = controller?.Status.ContainerStatus?.ContainerID;
  if (!container) throw new Error(`no running controller task in stack ${stack}`);
  const { Image: image } = await engine<{ Image: string }>('GET', `/containers/${container}/json`);
  const password = await docker([
    'exec',
    container,
    'node',
    '-e',
    "process.stdout.write(require('fs').readFileSync('/run/secrets/postgres-password', 'utf8').trim())",
  ]);
  const script = `
    const pg = require('node:module').createRequire(${JSON.stringify(join(root, 'functions/record-vote/package.json'))})('pg');
    const client = new pg.Client({ host: 'db', user: 'postgres', database: 'postgres', connectionTimeoutMillis: 10000, statement_timeout: 10000 });
    client.connect()
      .then(() => client.query('SELECT id, vote FROM votes'))
      .then((result) => { process.stdout.write(JSON.stringify(result.rows)); return client.end(); })
      .catch((error) => { console.error(error.message); process.exit(1); });`;
  const out = await docker(
    [
      'run',
      '--rm',
      '--read-only',
      '--network',
      `${stack}-back`,
      '--volume',
      `${root}:${root}:ro`,
      '--env',
      'PGPASSWORD',
      '--entrypoint',
      'node',
      image,
      '-e',
      script,
    ],
    { ...process.env, PGPASSWORD: password },
  );
  return new Map((JSON.parse(out) as Array<{ id: string; vote: string }>).map((row) => [row.id, row.vote]));
}
