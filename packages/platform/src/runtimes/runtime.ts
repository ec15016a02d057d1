import { randomBytes } from 'node:crypto';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { LogLine } from './logs.js';

/** A warm instance of a function: something serving `POST /_/invoke` at `url` (`http://host:port` or `unix:/path`). */
export interface Instance {
  id: string;
  url: string;
  /** The credential its calls carry (INVOKE_TOKEN_HEADER), handed to it at start (INVOKE_TOKEN_ENV). */
  invokeToken: string;
  /** Settles when the instance is gone, whether stopped or crashed. */
  exited: Promise<void>;
}

/**
 * What differs between running functions as local processes, containers or Swarm tasks.
 * Everything else (limits, queuing, timeouts, scaling) is the FunctionPool's, once for all.
 */
export interface Runtime {
  readonly kind: string;
  /** Prepares a function (image checks, leftovers); no instance is started: scale from zero. */
  deploy(fn: FunctionSpec): Promise<void>;
  /** One call in a fresh instance that exits after it; aborting the signal kills it. */
  runOnce(fn: FunctionSpec, invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse>;
  /** Starts a warm instance and resolves once it reports healthy. */
  startInstance(fn: FunctionSpec): Promise<Instance>;
  /** Stops an instance: gracefully (drain) or at once (kill). */
  stopInstance(instance: Instance, how: 'drain' | 'kill'): Promise<void>;
  /**
   * The warm instances of fn still running from a controller before this one (Swarm services
   * outlive their controller), taken over as this runtime's own; runtimes whose instances die
   * with their controller have none.
   */
  adopt?(fn: FunctionSpec): Promise<Instance[]>;
  /**
   * Takes away what deploy prepared for this spec (e.g. a Swarm service), once its instances have
   * stopped after an update or a removal; what the function's current deploy uses stays.
   */
  remove?(fn: FunctionSpec): Promise<void>;
  /** Stops everything this runtime started. */
  close(): Promise<void>;
  /** The last lines a function's instances wrote, where the runtime keeps them. */
  logs?(fn: string, tail: number): LogLine[];
}

/** A fresh credential for a warm instance: 256 random bits. */
export const newInvokeToken = () => randomBytes(32).toString('base64url');

/** Settings every runtime passes to function instances. */
export interface RuntimeOptions {
  /** Values for the functions' declared env, overriding the manifests' defaults (e.g. GATEWAY_URL). */
  env: Record<string, string | undefined>;
  /** Resolves a declared secret's value. */
  secret(name: string): string | undefined;
  /** What is echoed to this process's output for an instance's log line, newline included (e.g. a readable line on a terminal); default: the output as it is. */
  formatLogLine?: (line: string) => string;
}
