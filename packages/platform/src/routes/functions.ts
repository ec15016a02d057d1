import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { FunctionPool } from '../pool.js';
import { InvocationError } from '../errors.js';
import { sendError } from '../http-function.js';
import { sameToken } from '../tokens.js';

const validName = /^[a-z][a-z0-9-]{0,62}$/;

/** Finds the function named in the URL: 400 for a malformed name, 404 for an unknown one. */
export function lookup(pools: Map<string, FunctionPool>, name: string): FunctionPool {
  if (!validName.test(name)) {
    throw new InvocationError(400, 'invalid function name: use lower case letters, digits and dashes');
  }
  const pool = pools.get(name);
  if (!pool) throw new InvocationError(404, `function "${name}" not found`);
  return pool;
}

/**
 * A private function (manifest `private: true`) is invoked only by functions, which send the
 * platform's invoke token: any other caller gets a 403 and nothing runs or is queued.
 */
export function checkCaller(pool: FunctionPool, req: IncomingMessage, invokeToken: string | undefined): void {
  if (!pool.spec.private) return;
  const header = req.headers['x-invoke-token'];
  const given = Array.isArray(header) ? header[0] : header;
  if (sameToken(given, invokeToken)) return;
  throw new InvocationError(403, `function "${pool.spec.name}" is private: only functions of this app may invoke it`);
}

/** Express's error handler: every error a JSON `{ "error": ... }` with the right status (see sendError). */
export function errorHandler(log: { error(obj: object, msg: string): void }) {
  return (error: unknown, _req: Request, res: Response, _next: NextFunction) => sendError(res, error, log);
}
