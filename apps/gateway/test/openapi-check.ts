import { Ajv2020 } from 'ajv/dist/2020.js';
import { openapiDocument } from '@platform/core/openapi';

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>> };
const doc = openapiDocument as unknown as Doc;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema({ ...openapiDocument, $id: 'openapi.json' });

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/** Operations seen by `check`, as "METHOD /path/template". */
export const exercised = new Set<string>();

/** Every operation the document declares. */
export function documentedOperations(): string[] {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
}

/**
 * Checks a response against the document: its status must be documented for the operation
 * (or the operation has a `default`), and a JSON body must match the response's schema.
 * Returns the parsed body.
 */
export async function check(method: string, template: string, response: Response): Promise<unknown> {
  const operation = doc.paths[template]?.[method.toLowerCase()];
  if (!operation) throw new Error(`${method} ${template} is not in the OpenAPI document`);
  exercised.add(`${method.toUpperCase()} ${template}`);
  const status = String(response.status);
  const key = operation.responses[status] ? status : operation.responses.default ? 'default' : undefined;
  if (!key) throw new Error(`${method} ${template} answered ${status}, which the document does not list`);
  const text = await response.text();
  const declared = operation.responses[key]!.content;
  if (!declared) return text;
  const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
  if (!declared[type]) throw new Error(`${method} ${template} ${status}: content type ${type} is not documented (${Object.keys(declared).join(', ')})`);
  if (type !== 'application/json') return text;
  const body = JSON.parse(text) as unknown;
  const ref = `openapi.json#/${pointer('paths', template, method.toLowerCase(), 'responses', key, 'content', type, 'schema')}`;
  const validate = ajv.getSchema(ref);
  if (!validate) throw new Error(`no schema at ${ref}`);
  if (!validate(body)) throw new Error(`${method} ${template} ${status}: ${ajv.errorsText(validate.errors)}\n${text}`);
  return body;
}
