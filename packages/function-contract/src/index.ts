// What a function imports. The platform's manifest loader is `@platform/function-contract/manifest`
// (kept apart so that a function's cold start does not pay for loading zod).
export type { FunctionRequest, FunctionResponse, FunctionContext, Handler, FunctionDefinition, Invocation } from './types.js';
export { INSTANCE_HEADER, INVOKE_TOKEN_ENV, INVOKE_TOKEN_HEADER, MAX_INVOCATION_BYTES } from './types.js';
export { json, errorResponse, HttpError } from './respond.js';
export { serveFunction } from './serve.js';
export { runHandler, parseInvocation } from './invoke.js';
