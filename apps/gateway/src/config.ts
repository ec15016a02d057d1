import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { queueDefaults } from '@platform/queue';
import { compile as compileAddresses } from 'proxy-addr';
import { parseHostPattern } from '@platform/core';
import { checkFunctionSecrets } from '@platform/core/secrets';

const port = z.coerce.number().int().min(0).max(65_535);
const url = z.url();
/** A comma-separated list; `check` throws on an entry it cannot use, and `hint` says what to write. */
const commaList = (fallback: string, check: (list: string[]) => unknown = () => {}, hint = '') =>
  z
    .string()
    .default(fallback)
    .transform((value) =>
      value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .refine(
      (list) => {
        try {
          check(list);
          return true;
        } catch {
          return false;
        }
      },
      { message: hint },
    );
/** Empty is unset: a compose file passes a setting through as `${NAME:-}` without a second default. */
const blankIsUnset = <T extends z.ZodType>(schema: T) => z.preprocess((value) => (value === '' ? undefined : value), schema);

/** proxy-addr's names and CIDRs, checked by compiling them. */
const addressList = (fallback: string) =>
  commaList(fallback, compileAddresses, 'use addresses, CIDRs (10.0.0.0/8) or the names loopback, linklocal, uniquelocal, separated by commas');

/** Browser origins (scheme, host and port, as a browser's Origin header names them). */
const originList = commaList(
  '',
  (list) => {
    for (const origin of list) if (new URL(origin).origin !== origin) throw new Error(origin);
  },
  'use origins (scheme, host and port, no path), e.g. https://vote.example.com, separated by commas',
);

/** Every setting of the gateway, from the environment (see the README's settings table). */
export const configSchema = z.object({
  HOST: z.string().default('127.0.0.1'),
  PORT: port.default(8080),
  RESULT_PORT: port.default(8081),
  RUNTIME: z.enum(['process', 'docker', 'swarm']).default('process'),
  /**
   * Edge processes on the one port pair, beside the controller; 1 runs the whole gateway in one
   * process. Default: half the cores, at least 1. Each vote an edge takes needs about as much CPU
   * again in the functions and PostgreSQL (the bench's CPU per vote by process), so more edges
   * than half the cores only take CPU from them: on 2 cores, 2 edges accept fewer votes than 1.
   */
  GATEWAY_WORKERS: z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(() => Math.max(1, Math.floor(availableParallelism() / 2))),
  /**
   * What this process runs: `all` (the controller and GATEWAY_WORKERS edges, as `npm start` does),
   * `controller` (the runtime and the controller API on PORT: it leads, or stands by until the
   * leader is gone) or `edge` (pages and routes, with the leading controller found in the member list).
   */
  GATEWAY_ROLE: z.enum(['all', 'controller', 'edge']).default('all'),
  /**
   * The vote page's URL for a room's phones, shown by the result page and the dashboard as text and
   * a QR code. Unset: the first network address with HOST=0.0.0.0, else http://HOST:PORT/.
   */
  PUBLIC_URL: blankIsUnset(url.optional()),
  /** Where edges reach a controller (GATEWAY_ROLE=controller); default http://<HOST, or the host name for 0.0.0.0>:<PORT>. */
  CONTROLLER_ADVERTISE_URL: url.optional(),
  /**
   * The Swarm service of the edges (GATEWAY_ROLE=controller): the leading controller scales it by
   * the CPU its edges use, between EDGE_REPLICAS_MIN and EDGE_REPLICAS_MAX. Empty: not scaled.
   */
  EDGE_SERVICE: z.string().default(''),
  EDGE_REPLICAS_MIN: blankIsUnset(z.coerce.number().int().min(1).max(1_000).default(2)),
  /** 0: as many as the service can place (its `max_replicas_per_node` times the ready nodes). */
  EDGE_REPLICAS_MAX: blankIsUnset(z.coerce.number().int().min(0).max(1_000).default(0)),
  /** The share of one core each edge should use at most; more edges are started beyond it. */
  EDGE_TARGET_CPU: blankIsUnset(z.coerce.number().gt(0).max(64).default(0.5)),
  /** How long the edges' load must stay low before one is stopped. */
  EDGE_SCALE_DOWN_SECONDS: blankIsUnset(z.coerce.number().int().min(0).max(86_400).default(60)),
  /** The Docker network function containers join (docker runtime), or the overlay network of the function tasks (swarm runtime). */
  DOCKER_NETWORK: z.string().min(1).default('bridge'),
  /** Swarm runtime: prefix of the function services' names (and their owner label); one per gateway. */
  SWARM_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9-]{0,30}$/)
    .default('fn'),
  /** Swarm runtime: the port where one-shot job tasks fetch their invocation and post their response. */
  SWARM_CALLBACK_PORT: port.default(8082),
  /** How functions reach the gateway (e.g. http://gateway:8080 in compose). */
  FUNCTION_GATEWAY_URL: url.optional(),
  DATABASE_URL: url.optional(),
  /** A file holding the database password (a Docker secret), put into DATABASE_URL. */
  DATABASE_PASSWORD_FILE: z.string().optional(),
  QUEUE_URL: url.optional(),
  /** A file holding Redis's password (a Docker secret), put into QUEUE_URL and EVENTS_URL when they are redis:// URLs. */
  REDIS_PASSWORD_FILE: blankIsUnset(z.string().optional()),
  EVENTS_URL: url.optional(),
  DATA_DIR: z.string().default('.data'),
  EMBEDDED_POSTGRES_PORT: port.default(54329),
  FUNCTIONS_DIR: z.string().optional(),
  /** Images a deploy (POST /system/functions, `fn deploy`) may name: patterns, `*` for any characters, comma separated. By default those this project builds. */
  FUNCTION_IMAGES: commaList('voting/fn-*'),
  /**
   * Secrets a function may be given (comma separated): a deploy asking for another is refused.
   * Unset: those the app's own manifests declare. Never the gateway's own tokens.
   */
  FUNCTION_SECRETS: blankIsUnset(
    z
      .string()
      .transform((value) =>
        value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
      .superRefine((list, ctx) => {
        try {
          checkFunctionSecrets(list);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
        }
      })
      .optional(),
  ),
  SECRETS_DIR: z.string().default('/run/secrets'),
  OPTION_A: z.string().min(1).max(60).default('Cats'),
  OPTION_B: z.string().min(1).max(60).default('Dogs'),
  BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i)
    .default('16kb'),
  /** Live socket.io clients (result pages, dashboards) per server at most; beyond it new connections are refused. */
  MAX_LIVE_CLIENTS: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /** Live socket.io clients from one client address per server at most, polling sessions included. Unset: 1% of MAX_LIVE_CLIENTS, at least 100. */
  MAX_LIVE_CLIENTS_PER_ADDRESS: blankIsUnset(z.coerce.number().int().min(1).max(1_000_000).optional()),
  /** Largest size of a request's headers, bytes (beyond it 431). */
  MAX_HEADER_BYTES: z.coerce.number().int().min(1_024).max(1_048_576).default(16_384),
  /** Votes (POST to the vote function, sync, async or the form post) per window from one client address; 0: no limit. */
  VOTE_RATE_LIMIT_PER_ADDRESS: z.coerce.number().int().min(0).default(300),
  /**
   * Client addresses the per-address limit leaves alone: a room of phones behind one NAT shares
   * one private address. Names (loopback, linklocal, uniquelocal) or CIDRs; empty: none.
   */
  VOTE_RATE_LIMIT_EXEMPT_ADDRESSES: addressList('loopback, linklocal, uniquelocal'),
  /** Proxies whose X-Forwarded-For names the client (names or CIDRs, as above); empty: the connection's address is the client's. */
  TRUST_PROXY: addressList(''),
  /** Hosts async callbacks may reach whatever their address (host, host:port, *.domain; comma separated); others: public addresses only. */
  CALLBACK_ALLOWED_HOSTS: commaList('', (list) => list.map(parseHostPattern), 'use host names, addresses, host:port or *.domain patterns, separated by commas'),
  /** Votes per window by one voter (voter_id cookie); 0: no limit. */
  VOTE_RATE_LIMIT_PER_VOTER: z.coerce.number().int().min(0).default(10),
  /** The window of the vote rate limits, seconds. */
  VOTE_RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).max(3_600).default(10),
  /**
   * Browser origins besides the app's own pages and PUBLIC_URL's that may call functions (a form
   * post, a fetch) and open socket.io connections; other sites' pages get a 403.
   */
  ALLOWED_ORIGINS: originList,
  /** Deprecated: the former name of ALLOWED_ORIGINS, read into it. */
  SOCKET_ORIGINS: originList,
  /** User name of basic auth on /system mutations (the password is the admin token). */
  GATEWAY_ADMIN_USER: z.string().min(1).default('admin'),
  /** Whether read-only /system routes, /metrics and the dashboard's data are public. */
  SYSTEM_READ_PUBLIC: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true'),
  /** Attempts of an async call before it goes to the dead letters. */
  QUEUE_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(queueDefaults.maxAttempts),
  /** Wait before the first retry of a failed async call, doubled per attempt up to 30 s. */
  QUEUE_RETRY_BACKOFF_MS: z.coerce.number().int().min(0).max(30_000).default(queueDefaults.retryBackoffMs),
  /** An async call taken but not settled within this is redelivered (a gateway that died). */
  QUEUE_VISIBILITY_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(3_600)
    .default(queueDefaults.visibilityTimeoutMs / 1_000),
  /** How long the status and result of an async call are kept (GET /system/calls/<id>). */
  CALL_RESULT_SECONDS: z.coerce.number().int().min(1).max(604_800).default(3_600),
  /** On SIGTERM/SIGINT, how long calls in flight may take to finish before their instances are stopped. */
  SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(0).max(600).default(10),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** How log lines are written: pretty (one readable line each), json (one JSON object each), auto (pretty on a terminal, else json). */
  LOG_FORMAT: z.enum(['auto', 'pretty', 'json']).default('auto'),
});

export type Config = z.infer<typeof configSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`invalid settings: ${problems.join('; ')}`);
  }
  const config = parsed.data;
  config.ALLOWED_ORIGINS = [...new Set([...config.ALLOWED_ORIGINS, ...config.SOCKET_ORIGINS])];
  // A process of a tier shares one database with the others, and a controller's functions need an edge to call.
  if (config.GATEWAY_ROLE !== 'all' && !config.DATABASE_URL) {
    throw new Error(`invalid settings: GATEWAY_ROLE=${config.GATEWAY_ROLE} needs DATABASE_URL, the database every process of the tier shares`);
  }
  if (config.GATEWAY_ROLE === 'controller' && !config.FUNCTION_GATEWAY_URL) {
    throw new Error('invalid settings: GATEWAY_ROLE=controller needs FUNCTION_GATEWAY_URL, where functions reach an edge');
  }
  if (config.EDGE_REPLICAS_MAX && config.EDGE_REPLICAS_MAX < config.EDGE_REPLICAS_MIN) {
    throw new Error(`invalid settings: EDGE_REPLICAS_MAX (${config.EDGE_REPLICAS_MAX}) is below EDGE_REPLICAS_MIN (${config.EDGE_REPLICAS_MIN})`);
  }
  return config;
}
