import type { FunctionContext, FunctionDefinition, FunctionResponse, Invocation } from './types.js';
import { errorResponse, HttpError } from './respond.js';

/** Runs the handler for one invocation; a thrown error becomes a JSON error response, never a crash. */
export async function runHandler(definition: FunctionDefinition, invocation: Invocation, base: Omit<FunctionContext, 'callId'>): Promise<FunctionResponse> {
  // The call's logger is made when the handler first logs: most calls never do.
  let log: FunctionContext['log'] | undefined;
  const context: FunctionContext = {
    ...base,
    callId: invocation.callId,
    get log() {
      log ??= base.log.child({ callId: invocation.callId });
      return log;
    },
  };
  try {
    const response = await definition.handler(invocation.request, context);
    return { status: response.status, headers: response.headers ?? {}, body: response.body ?? '' };
  } catch (error) {
    if (error instanceof HttpError) return errorResponse(error.status, error.message, error.headers);
    context.log.error({ err: error }, 'handler failed');
    return errorResponse(500, 'the function failed; see its logs');
  }
}

/** Checks the shape of an invocation read from stdin or HTTP. */
export function parseInvocation(text: string): Invocation {
  const value = JSON.parse(text) as Partial<Invocation> | null;
  const request = value?.request;
  if (
    !value ||
    typeof value.callId !== 'string' ||
    !request ||
    typeof request.method !== 'string' ||
    typeof request.path !== 'string' ||
    typeof request.body !== 'string' ||
    typeof request.headers !== 'object' ||
    typeof request.query !== 'object'
  ) {
    throw new Error('invocation must be {"callId": string, "request": {method, path, query, headers, body}}');
  }
  return value as Invocation;
}
