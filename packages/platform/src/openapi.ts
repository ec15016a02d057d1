// The gateway's HTTP API as an OpenAPI 3.1 document, served at GET /system/openapi.json.
// The gateway's tests check every route's responses against it.
import { manifestJsonSchema } from '@platform/function-contract/manifest';

/** A deploy's body: the manifest's own schema (one definition), plus the OpenFaaS names it takes. */
const manifest = manifestJsonSchema();
const deployRequest = {
  ...manifest,
  description:
    'A function manifest (functions/<name>/function.json); OpenFaaS\'s service, envVars, limits.memory, namespace ("default") and readOnlyRootFilesystem are taken as name, env, memoryMb',
  required: [],
  properties: {
    ...manifest.properties,
    service: { type: 'string', description: 'OpenFaaS: the name' },
    envVars: { type: 'object', additionalProperties: { type: 'string' }, description: 'OpenFaaS: env' },
    limits: { type: 'object', properties: { memory: { type: 'string', examples: ['128Mi'] }, cpu: { type: 'string' } }, additionalProperties: false },
    namespace: { const: 'default' },
    readOnlyRootFilesystem: { const: true },
  },
};

const json = (schema: object) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const error = (description: string) => ({ description, content: json(ref('Error')) });
const unauthorized = {
  description: 'missing or wrong credentials',
  headers: { 'WWW-Authenticate': { schema: { type: 'string' } } },
  content: json(ref('Error')),
};
const functionName = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'the function name: lower case letters, digits and dashes',
  schema: { type: 'string' },
};
const deployResponses = (conflict: '404' | '409', description: string) => ({
  '202': { description: 'deployed: this edge routes to it now, the others within moments', content: json(ref('FunctionStatus')) },
  '400': error('a bad field (named in the error), a body that is not JSON, or code the runtime cannot run'),
  '401': unauthorized,
  '403': error('an image outside the allowed ones'),
  [conflict]: error(description),
  '415': error('the body is not JSON'),
});
const callIdHeader = { 'X-Call-Id': { description: 'id of this call', schema: { type: 'string' } } };
const invocationErrors = {
  '400': error('malformed function name or bad input'),
  '403': error('a private function, invoked without the invoke token'),
  '404': error('unknown function'),
  '413': error('request body over the limit'),
  '429': {
    ...error('function busy (maxConcurrency calls in flight and maxQueued waiting), or a rate limit reached'),
    headers: { 'Retry-After': { schema: { type: 'string' } } },
  },
  '502': error('the instance failed'),
  '504': error('the call ran longer than the manifest timeoutSeconds'),
};
const readSecurity = [{}, { bearer: [] }, { basic: [] }];
const adminSecurity = [{ bearer: [] }, { basic: [] }];
const invoke = (method: string) => ({
  tags: ['functions'],
  summary: `Invokes a function (${method}); the path after the name and the query are passed through`,
  operationId: `invoke${method[0]}${method.slice(1).toLowerCase()}`,
  parameters: [functionName],
  requestBody: method === 'GET' || method === 'DELETE' ? undefined : { required: false, content: { '*/*': { schema: {} } } },
  responses: {
    default: { description: "the function's response: its status, headers and body", headers: callIdHeader },
    ...invocationErrors,
  },
});

export const openapiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Function gateway',
    version: '1.0.0',
    description:
      'Routes shared with the OpenFaaS gateway (/function, /async-function, /system/functions, /system/function, /system/scale-function, /system/info, /healthz) behave like it; /system/calls is this gateway\'s own. Errors are always JSON {"error": "..."}.',
  },
  tags: [{ name: 'functions' }, { name: 'system' }],
  paths: {
    '/function/{name}': {
      get: invoke('GET'),
      post: invoke('POST'),
      put: invoke('PUT'),
      patch: invoke('PATCH'),
      delete: invoke('DELETE'),
    },
    '/async-function/{name}': {
      post: {
        tags: ['functions'],
        summary: 'Queues a call; answers once it is durably queued',
        operationId: 'invokeAsync',
        parameters: [
          functionName,
          {
            name: 'X-Callback-Url',
            in: 'header',
            required: false,
            description:
              'an http(s) URL that receives the result as a POST with X-Function-Status, X-Duration-Seconds and X-Call-Id; redirects are not followed. ' +
              'Its host must be in CALLBACK_ALLOWED_HOSTS or have only public addresses (checked when queued and again when sent): loopback, private, link-local and other special addresses are refused',
            schema: { type: 'string', format: 'uri' },
          },
        ],
        requestBody: { required: false, content: { '*/*': { schema: {} } } },
        responses: {
          '202': { description: 'queued', headers: callIdHeader, content: json(ref('Accepted')) },
          '400': error('malformed function name, or an X-Callback-Url that is not http(s), does not resolve or points to a refused address'),
          '403': error('a private function, invoked without the invoke token'),
          '404': error('unknown function'),
          '413': error('request body over the limit'),
          '429': { ...error('a rate limit reached'), headers: { 'Retry-After': { schema: { type: 'string' } } } },
          '503': { ...error('the call could not be queued, or the queue is not keeping up'), headers: { 'Retry-After': { schema: { type: 'string' } } } },
        },
      },
    },
    '/system/functions': {
      get: {
        tags: ['system'],
        summary: 'The functions and their state',
        description:
          "The same whichever edge of the tier answers: invocationCount, inFlight and queued count the calls of every edge (each shares its figures about once a second; an edge not heard from for 3 s no longer counts); replicas, instances and coldStarts are the controller's.",
        operationId: 'listFunctions',
        security: readSecurity,
        responses: {
          '200': { description: 'every function', content: json({ type: 'array', items: ref('FunctionStatus') }) },
          '401': unauthorized,
        },
      },
      post: {
        tags: ['system'],
        summary: 'Deploys a function: every edge routes to it once the answer comes; kept in the database, it survives restarts',
        operationId: 'deployFunction',
        security: adminSecurity,
        requestBody: { required: true, content: json(ref('FunctionDeployment')) },
        responses: deployResponses('409', 'a function of that name exists (change it with PUT)'),
      },
      put: {
        tags: ['system'],
        summary: 'Changes a function: new calls go to new instances, calls in flight finish on the old ones',
        operationId: 'updateFunction',
        security: adminSecurity,
        requestBody: { required: true, content: json(ref('FunctionDeployment')) },
        responses: deployResponses('404', 'no function of that name (deploy it with POST)'),
      },
      delete: {
        tags: ['system'],
        summary: 'Removes a function: new calls get 404, calls in flight finish, then its instances stop',
        operationId: 'deleteFunction',
        security: adminSecurity,
        requestBody: {
          required: true,
          content: json({ type: 'object', required: ['functionName'], properties: { functionName: { type: 'string' } } }),
        },
        responses: {
          '202': {
            description: 'removed',
            content: json({ type: 'object', required: ['functionName'], properties: { functionName: { type: 'string' } }, additionalProperties: false }),
          },
          '400': error('functionName missing, or the body is not JSON'),
          '401': unauthorized,
          '404': error('unknown function'),
          '415': error('the body is not JSON'),
        },
      },
    },
    '/system/function/{name}': {
      get: {
        tags: ['system'],
        summary: 'One function and its state',
        description: "As in /system/functions: the counts are the whole tier's.",
        operationId: 'getFunction',
        security: readSecurity,
        parameters: [functionName],
        responses: {
          '200': { description: 'the function', content: json(ref('FunctionStatus')) },
          '400': error('malformed function name'),
          '401': unauthorized,
          '404': error('unknown function'),
        },
      },
    },
    '/system/scale-function/{name}': {
      post: {
        tags: ['system'],
        summary: 'Sets the number of warm instances now (0..maxInstances); idle ones still stop after idleSeconds',
        operationId: 'scaleFunction',
        security: adminSecurity,
        parameters: [functionName],
        requestBody: { required: true, content: json(ref('ScaleRequest')) },
        responses: {
          '200': { description: 'scaled', content: json(ref('ScaleRequest')) },
          '400': error('bad body, or replicas outside 0..maxInstances'),
          '401': unauthorized,
          '404': error('unknown function'),
          '415': error('the body is not JSON'),
          '502': error('an instance could not be started'),
        },
      },
    },
    '/system/calls/{callId}': {
      get: {
        tags: ['system'],
        summary: 'Status and result of an async call, kept CALL_RESULT_SECONDS in the shared database: every edge answers the same',
        operationId: 'getCall',
        security: readSecurity,
        parameters: [{ name: 'callId', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'the call', content: json(ref('Call')) },
          '401': unauthorized,
          '404': error('unknown call, or kept no longer'),
          '503': error('the records of async calls cannot be read now'),
        },
      },
    },
    '/system/gateways': {
      get: {
        tags: ['system'],
        summary: "The gateway tier's live members: its edges and its controllers (the leader and the standbys), as each last reported itself",
        operationId: 'listGateways',
        security: readSecurity,
        responses: {
          '200': {
            description: 'every member seen within the last few seconds, controllers first, each by age',
            content: json({ type: 'array', items: ref('GatewayMember') }),
          },
          '401': unauthorized,
          '501': error('this gateway keeps no list of the members (it shares no database with others)'),
          '503': { ...error('the list cannot be read now (the database is unreachable)'), headers: { 'Retry-After': { schema: { type: 'string' } } } },
        },
      },
    },
    '/system/logs': {
      get: {
        tags: ['system'],
        summary:
          "The last lines a function's instances wrote (as OpenFaaS's /system/logs), where the runtime keeps them; admin only, since functions may log users' data",
        operationId: 'getLogs',
        security: adminSecurity,
        parameters: [
          { name: 'name', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'tail', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        ],
        responses: {
          '200': {
            description: 'newline-delimited JSON, one line per log line: {name, namespace, instance, timestamp, text}',
            content: { 'application/x-ndjson': { schema: { type: 'string' } } },
          },
          '400': error('no function named, or a bad tail'),
          '401': unauthorized,
          '404': error('unknown function'),
          '501': error('the runtime keeps no logs'),
        },
      },
    },
    '/system/public-url': {
      get: {
        tags: ['system'],
        summary: 'Where people reach the app, with its QR code (what a page shows on a projector)',
        operationId: 'publicUrl',
        responses: {
          '200': { description: 'the URL and a QR code of it', content: json(ref('PublicUrl')) },
          '404': error('no public URL is configured'),
        },
      },
    },
    '/system/info': {
      get: {
        tags: ['system'],
        summary: "Versions: this gateway's release and commit, its runtime and architecture (OpenFaaS's shape; faas-cli version reads it)",
        operationId: 'systemInfo',
        responses: { '200': { description: 'the versions', content: json(ref('SystemInfo')) } },
      },
    },
    '/system/openapi.json': {
      get: {
        tags: ['system'],
        summary: 'This document',
        operationId: 'openapi',
        responses: { '200': { description: 'the OpenAPI document', content: json({ type: 'object', required: ['openapi', 'paths'] }) } },
      },
    },
    '/healthz': {
      get: {
        tags: ['system'],
        summary: 'Gateway readiness',
        operationId: 'healthz',
        responses: {
          '200': { description: 'ready', content: json(ref('Health')) },
          '503': { description: 'starting, or stopping', content: json(ref('Health')) },
        },
      },
    },
    '/metrics': {
      get: {
        tags: ['system'],
        summary: 'Prometheus metrics',
        operationId: 'metrics',
        security: readSecurity,
        responses: {
          '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
          '401': unauthorized,
        },
      },
    },
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'the gateway admin token' },
      basic: { type: 'http', scheme: 'basic', description: 'user GATEWAY_ADMIN_USER, password the gateway admin token' },
    },
    schemas: {
      FunctionDeployment: deployRequest,
      PublicUrl: {
        type: 'object',
        required: ['url', 'qr'],
        properties: { url: { type: 'string', format: 'uri' }, qr: { type: 'string', description: 'an SVG image of a QR code of the URL' } },
        additionalProperties: false,
      },
      Error: {
        type: 'object',
        required: ['error'],
        properties: { error: { type: 'string' } },
        additionalProperties: false,
      },
      Accepted: {
        type: 'object',
        required: ['callId'],
        properties: { callId: { type: 'string' } },
        additionalProperties: false,
      },
      SystemInfo: {
        type: 'object',
        required: ['provider', 'version', 'arch'],
        properties: {
          provider: {
            type: 'object',
            required: ['provider', 'orchestration', 'version'],
            properties: {
              provider: { type: 'string', description: 'what runs the functions: this platform' },
              orchestration: { type: 'string', description: 'the runtime: process, docker or swarm', examples: ['process', 'docker', 'swarm'] },
              version: ref('Version'),
            },
            additionalProperties: false,
          },
          version: ref('Version'),
          arch: { type: 'string', description: "the gateway's CPU architecture, as Node names it", examples: ['x64', 'arm64'] },
        },
        additionalProperties: false,
      },
      Version: {
        type: 'object',
        required: ['release', 'sha'],
        properties: {
          release: { type: 'string', description: 'the platform package\'s version, or "unknown"' },
          sha: { type: 'string', description: 'the git commit checked out where the gateway started, or "unknown" (e.g. in the bundled image)' },
        },
        additionalProperties: false,
      },
      Health: {
        type: 'object',
        required: ['status', 'runtime', 'functions'],
        properties: { status: { enum: ['ok', 'starting'] }, runtime: { type: 'string' }, functions: { type: 'integer', minimum: 0 } },
      },
      ScaleRequest: {
        type: 'object',
        required: ['replicas'],
        properties: {
          serviceName: { type: 'string', description: 'the function name; when given it must match the path' },
          replicas: { type: 'integer', minimum: 0 },
        },
      },
      FunctionStatus: {
        type: 'object',
        description: "OpenFaaS's FunctionStatus, plus this gateway's own fields",
        required: ['name', 'image', 'namespace', 'replicas', 'availableReplicas', 'invocationCount', 'labels', 'annotations', 'limits'],
        properties: {
          name: { type: 'string' },
          image: { type: 'string' },
          namespace: { type: 'string' },
          envProcess: { type: 'string' },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          annotations: { type: 'object', additionalProperties: { type: 'string' } },
          limits: { type: 'object', properties: { memory: { type: 'string' } } },
          replicas: { type: 'integer', minimum: 0 },
          availableReplicas: { type: 'integer', minimum: 0 },
          invocationCount: { type: 'integer', minimum: 0 },
          inFlight: { type: 'integer', minimum: 0 },
          queued: { type: 'integer', minimum: 0 },
          coldStarts: { type: 'integer', minimum: 0 },
          callsPerSecond: { type: 'number', minimum: 0, description: 'calls finished per second over the last 10 s, the whole tier' },
          latencyMs: {
            description: 'percentiles of the calls of the last minute, the whole tier; null when there were none',
            oneOf: [
              { type: 'null' },
              {
                type: 'object',
                required: ['p50', 'p95', 'p99'],
                properties: { p50: { type: 'number' }, p95: { type: 'number' }, p99: { type: 'number' } },
                additionalProperties: false,
              },
            ],
          },
          instances: { type: 'array', items: { type: 'string' } },
          mode: { enum: ['warm', 'oneshot'] },
          timeoutSeconds: { type: 'number' },
          maxConcurrency: { type: 'integer' },
          maxInstances: { type: 'integer' },
          idleSeconds: { type: 'number' },
        },
      },
      GatewayMember: {
        type: 'object',
        required: ['id', 'role', 'host', 'pid', 'leader', 'startedAt', 'lastSeenAt', 'inFlight', 'cpu'],
        properties: {
          id: { type: 'string', description: 'unique per process: <role>-<host>-<pid>-<random>' },
          role: { enum: ['edge', 'controller'] },
          host: { type: 'string' },
          pid: { type: 'integer' },
          leader: { type: 'boolean', description: 'true for the leading controller only' },
          startedAt: { type: 'string', format: 'date-time', description: 'its first heartbeat' },
          lastSeenAt: { type: 'string', format: 'date-time', description: 'its last heartbeat (one a second)' },
          inFlight: { type: 'integer', minimum: 0, description: 'calls in flight at its last heartbeat' },
          cpu: { type: 'number', minimum: 0, description: 'the share of one CPU core it used between its last two heartbeats (edges are scaled by it)' },
        },
        additionalProperties: false,
      },
      Call: {
        type: 'object',
        required: ['callId', 'function', 'status', 'acceptedAt', 'updatedAt', 'attempts'],
        properties: {
          callId: { type: 'string' },
          function: { type: 'string' },
          status: { enum: ['queued', 'running', 'succeeded', 'failed'] },
          acceptedAt: { type: 'string', format: 'date-time' },
          updatedAt: { type: 'string', format: 'date-time' },
          attempts: { type: 'integer', minimum: 0 },
          result: {
            type: 'object',
            description: "the function's response (absent while queued, and for calls combined into a batch invocation)",
            required: ['status', 'headers', 'body'],
            properties: {
              status: { type: 'integer' },
              headers: { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } },
              body: { type: 'string' },
            },
          },
          error: { type: 'string', description: 'why the last attempt failed' },
        },
        additionalProperties: false,
      },
    },
  },
} as const;
