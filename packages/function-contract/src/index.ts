export type { FunctionRequest, FunctionResponse, FunctionContext, Handler, FunctionDefinition, Invocation } from './types.js';
export { manifestSchema, loadManifest, loadFunctions, ManifestError, type FunctionManifest, type FunctionSpec } from './manifest.js';
export { json, errorResponse, HttpError } from './respond.js';
export { serveFunction } from './serve.js';
export { runHandler, parseInvocation } from './invoke.js';
