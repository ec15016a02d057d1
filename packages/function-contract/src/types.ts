import type { Logger } from 'pino';

/** What a function receives: the HTTP request the gateway got, as plain data. */
export interface FunctionRequest {
  method: string;
  /** Path below the function's route: `/function/results/options` gives `/options`. */
  path: string;
  query: Record<string, string | string[]>;
  /** Header names are lower case. */
  headers: Record<string, string>;
  /** The body as UTF-8 text ('' when there is none). */
  body: string;
}

/** What a function answers. */
export interface FunctionResponse {
  status: number;
  headers?: Record<string, string | string[]>;
  body?: string;
}

export interface FunctionContext {
  /** The call's id: the gateway's X-Call-Id, the same in logs of every process the call touches. */
  callId: string;
  /** Identifies the process or container serving the call. */
  instance: string;
  log: Logger;
  /** Environment variables the manifest declares, with its defaults applied. */
  env: Readonly<Record<string, string>>;
  /** Secrets the manifest declares, read from the environment or from /run/secrets. */
  secret(name: string): string;
}

export type Handler = (request: FunctionRequest, context: FunctionContext) => Promise<FunctionResponse>;

/**
 * A function module: its handler, plus optional hooks run once per process. `setup` opens
 * connections before the first call (a warm instance reports healthy only after it);
 * `teardown` closes them before the process exits.
 */
export interface FunctionDefinition {
  handler: Handler;
  setup?(context: Omit<FunctionContext, 'callId'>): Promise<void>;
  teardown?(): Promise<void>;
}

/**
 * Sent with each `POST /_/invoke`: the instance the platform means. An address is reused as soon
 * as an instance dies (a new container may take a killed one's IP at once), so a warm instance
 * refuses (421) a call meant for another: it runs nothing, and the platform sends it elsewhere.
 */
export const INSTANCE_HEADER = 'x-fn-instance';

/**
 * The environment variable carrying a warm instance's credential, made afresh by the runtime that
 * starts it: `POST /_/invoke` runs only calls that send it in INVOKE_TOKEN_HEADER (401 otherwise),
 * so nothing else on the functions' network can run the function as the platform would.
 */
export const INVOKE_TOKEN_ENV = 'FN_INVOKE_TOKEN';
export const INVOKE_TOKEN_HEADER = 'x-fn-invoke-token';

/**
 * The largest `POST /_/invoke` body a warm instance reads (413 beyond it, reading stopped): far
 * above any call the gateway admits (its BODY_LIMIT, JSON-escaped, plus headers).
 */
export const MAX_INVOCATION_BYTES = 8 * 1024 * 1024;

/** The wire form of one call between the gateway and an instance (stdin/stdout or HTTP). */
export interface Invocation {
  callId: string;
  request: FunctionRequest;
}
