import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65_535);
const url = z.url();

/** Every setting of the gateway, from the environment (see the README's settings table). */
export const configSchema = z.object({
  HOST: z.string().default('127.0.0.1'),
  PORT: port.default(8080),
  RESULT_PORT: port.default(8081),
  RUNTIME: z.enum(['process', 'docker']).default('process'),
  /** The Docker network function containers join (docker runtime). */
  DOCKER_NETWORK: z.string().min(1).default('bridge'),
  /** How functions reach the gateway (e.g. http://gateway:8080 in compose). */
  FUNCTION_GATEWAY_URL: url.optional(),
  DATABASE_URL: url.optional(),
  /** A file holding the database password (a Docker secret), put into DATABASE_URL. */
  DATABASE_PASSWORD_FILE: z.string().optional(),
  QUEUE_URL: url.optional(),
  EVENTS_URL: url.optional(),
  DATA_DIR: z.string().default('.data'),
  EMBEDDED_POSTGRES_PORT: port.default(54329),
  FUNCTIONS_DIR: z.string().optional(),
  SECRETS_DIR: z.string().default('/run/secrets'),
  OPTION_A: z.string().min(1).max(60).default('Cats'),
  OPTION_B: z.string().min(1).max(60).default('Dogs'),
  BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i).default('16kb'),
  SOCKET_ORIGINS: z
    .string()
    .default('')
    .transform((value) => value.split(',').map((s) => s.trim()).filter(Boolean)),
  /** User name of basic auth on /system mutations (the password is the admin token). */
  GATEWAY_ADMIN_USER: z.string().min(1).default('admin'),
  /** Whether read-only /system routes, /metrics and the dashboard's data are public. */
  SYSTEM_READ_PUBLIC: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true'),
  /** How long the status and result of an async call are kept (GET /system/calls/<id>). */
  CALL_RESULT_SECONDS: z.coerce.number().int().min(1).max(604_800).default(3_600),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export type Config = z.infer<typeof configSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`invalid settings: ${problems.join('; ')}`);
  }
  return parsed.data;
}
