/**
 * The OpenAPI 3.1 document of the API, made from the described operations (`api-spec.ts`) with
 * zod's own JSON Schema conversion, and the route that serves it (GET /api/openapi.json).
 *
 * Every schema exported by `shared/protocol` as `<name>Schema` (and `sendMessageRequest`) is a
 * component named after it (`roomMessageSchema` → `RoomMessage`); everything else an operation
 * uses is written inline. Requests are converted as zod parses them (`io: 'input'`: defaults
 * optional, coercions as what is sent), responses as the server writes them (`io: 'output'`:
 * objects closed with `additionalProperties: false`, so a field the server adds undocumented
 * fails the response test).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Router } from 'express';
import { z } from 'zod';
import { repoRoot } from '../../../runtime/config';
import * as protocol from '../../../shared/protocol/index';
import type { ErrorCode } from '../../../shared/protocol/errors';
import { AUTH_ERRORS, BODY_ERRORS, COMMON_ERRORS, ERRORS, apiRegistry, type ApiRegistry, type Auth, type OperationSpec, type Reply } from './api-spec';

type JsonSchema = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  servers: { url: string; description: string }[];
  paths: Record<string, Record<string, JsonSchema>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, JsonSchema> };
  [key: string]: unknown;
}

export interface DocumentInfo {
  /** Where clients reach the API: the public https URL of the proxy. */
  publicUrl: string;
  /** The API's version; default: the package's. */
  version?: string;
}

/** The package's version: the API's. */
const packageVersion = (): string => (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

const SECURITY_SCHEMES: Record<Exclude<Auth, 'none'>, { name: string; scheme: JsonSchema }> = {
  session: {
    name: 'session',
    scheme: { type: 'http', scheme: 'bearer', description: 'The `token` of POST /api/auth/login (or /api/auth/password), as `Authorization: Bearer <token>`.' },
  },
  admin: {
    name: 'adminToken',
    scheme: { type: 'http', scheme: 'bearer', description: 'The operators\u2019 API: `Authorization: Bearer <ROOMCAST_ADMIN_TOKEN>`. Unset, the API answers 404 `admin_disabled`.' },
  },
  ticket: {
    name: 'streamTicket',
    scheme: {
      type: 'apiKey',
      in: 'query',
      name: 'ticket',
      description: 'A single-use ticket from POST /api/events/tickets, since an EventSource cannot send headers: it opens one stream, once, within seconds.',
    },
  },
};

const OVERVIEW = `Real-time group messaging for live interaction rooms. This document is made at start-up from the
schemas the server validates requests with, so it cannot drift from what the server does.

- **Bodies** are JSON (\`Content-Type: application/json\`, UTF-8; else 415). The server keeps JSON exactly,
  so it refuses what it could not keep: U+0000, lone surrogates, numbers beyond a double, nesting deeper than 32.
- **Errors** are \`{"error": {"code", "message", "details?"}}\` with a 4xx/5xx status; act on \`code\` (each
  operation lists its codes), show \`message\`. A 429 or 503 carries \`Retry-After\` (seconds).
- **Authentication**: \`Authorization: Bearer <token>\` with the token of POST /api/auth/login.
- **Sending is idempotent** per \`clientMsgId\`: retry a send with the same key after any failure; a replay
  answers the stored message with \`Idempotent-Replayed: true\`.
- **Cursors**: resync pages by seq (\`after\`, \`personalAfter\` → \`nextAfter\`); event feeds by an opaque
  cursor (\`after\` → \`next\`) of any age. Both say \`hasMore\`: ask again at once.
- Live messages arrive over STOMP on the WebSocket \`/ws\` (POST /api/broker-token, GET /api/rooms/{roomId}/subscriptions),
  or over Server-Sent Events where this server offers them.

docs/api.md in the repository walks through a client.`;

/** `roomMessageSchema` → `RoomMessage`: the shared schemas and their component names. */
function protocolComponents(): Map<z.ZodType, string> {
  const named = new Map<z.ZodType, string>();
  for (const [exported, value] of Object.entries(protocol)) {
    if (!(value instanceof z.ZodType)) continue;
    const base = exported.endsWith('Schema') ? exported.slice(0, -'Schema'.length) : exported;
    named.set(value, base.charAt(0).toUpperCase() + base.slice(1));
  }
  return named;
}

/** `/api/rooms/:roomId` → `/api/rooms/{roomId}` */
export const openApiPath = (expressPath: string): string => expressPath.replace(/:(\w+)/g, '{$1}');

const REF_PREFIX = '#/components/schemas/';

/** Every `$ref` in a JSON Schema, as component names. */
function refsIn(schema: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(schema)) for (const s of schema) refsIn(s, into);
  else if (schema !== null && typeof schema === 'object') {
    for (const [k, v] of Object.entries(schema)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith(REF_PREFIX)) into.add(v.slice(REF_PREFIX.length));
      else refsIn(v, into);
    }
  }
  return into;
}

/**
 * Converts the schemas one direction uses (requests or responses) in one pass, so that the
 * shared ones become references: `schemaOf(s)` is then `s`'s JSON Schema, or a `$ref`.
 */
function convertAll(io: 'input' | 'output', used: Set<z.ZodType>, components: Map<z.ZodType, string>) {
  const registry = z.registry<{ id: string }>();
  for (const [schema, name] of components) registry.add(schema, { id: name });
  const local = new Map<z.ZodType, string>();
  for (const schema of used) {
    if (registry.has(schema)) continue;
    const id = `__${io}${local.size}`;
    local.set(schema, id);
    registry.add(schema, { id });
  }
  const { schemas } = z.toJSONSchema(registry, { io, uri: (id) => `${REF_PREFIX}${id}`, unrepresentable: 'throw' }) as { schemas: Record<string, JsonSchema> };
  if ('__shared' in schemas) throw new Error(`openapi: a recursive schema among the ${io}s; give it a component name`);
  /** Without `$schema` (the document names the dialect once) and `$id` (zod's, a bare fragment). */
  const clean = (s: JsonSchema | undefined): JsonSchema => Object.fromEntries(Object.entries(s ?? {}).filter(([k]) => k !== '$schema' && k !== '$id'));
  for (const id of local.values()) {
    for (const ref of refsIn(schemas[id])) {
      if (ref.startsWith('__')) throw new Error(`openapi: a schema used inside another ${io} schema must be a shared one (shared/protocol)`);
    }
  }
  return {
    schemaOf(schema: z.ZodType): JsonSchema {
      const name = components.get(schema);
      if (name !== undefined) return { $ref: `${REF_PREFIX}${name}` };
      return clean(schemas[local.get(schema) as string]);
    },
    component: (name: string): JsonSchema | undefined => (schemas[name] ? clean(schemas[name]) : undefined),
  };
}

const isReply = (r: z.ZodType | Reply): r is Reply => !(r instanceof z.ZodType);

const REASONS: Record<number, string> = { 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No content', 503: 'Not ready' };

/** The error codes of `op` by status: its own, its authentication's, its body's, and the common ones. */
function errorsByStatus(op: OperationSpec): Map<number, ErrorCode[]> {
  const codes = new Set<ErrorCode>([...(op.errors ?? []), ...AUTH_ERRORS[op.auth], ...COMMON_ERRORS]);
  if (op.body || op.form) for (const c of BODY_ERRORS) codes.add(c);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const known = ERRORS[code];
    if (!known) throw new Error(`openapi: ${op.method.toUpperCase()} ${op.path} answers "${code}", which ERRORS in api-spec.ts does not describe`);
    byStatus.set(known.status, [...(byStatus.get(known.status) ?? []), code]);
  }
  for (const list of byStatus.values()) list.sort();
  return new Map([...byStatus].sort(([a], [b]) => a - b));
}

/** Makes the OpenAPI 3.1 document of every operation in `registry`. Throws when a description is inconsistent. */
export function openApiDocument(registry: ApiRegistry, info: DocumentInfo): OpenApiDocument {
  const ops = registry.operations().sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
  const components = protocolComponents();

  const inputs = new Set<z.ZodType>();
  const hooks = registry.webhooks().sort((a, b) => a.name.localeCompare(b.name));
  const outputs = new Set<z.ZodType>([protocol.errorBodySchema, ...hooks.map((w) => w.body)]);
  for (const op of ops) {
    for (const s of [op.params, op.query, op.body, op.form]) if (s) inputs.add(s);
    for (const r of Object.values(op.responses)) {
      const json = r === null ? undefined : isReply(r) ? r.json : r;
      if (json) outputs.add(json);
    }
  }
  const input = convertAll('input', inputs, components);
  const output = convertAll('output', outputs, components);

  const inputRefs = new Set<string>();
  const outputRefs = new Set<string>(['ErrorBody']);
  const operationIds = new Set<string>();
  const usedSchemes = new Set<Exclude<Auth, 'none'>>();
  const paths: OpenApiDocument['paths'] = {};
  for (const op of ops) {
    const where = `${op.method.toUpperCase()} ${op.path}`;
    if (operationIds.has(op.operationId)) throw new Error(`openapi: operationId ${op.operationId} is used twice (${where})`);
    operationIds.add(op.operationId);

    const parameters: JsonSchema[] = [];
    const fields = (schema: z.ZodObject | undefined, at: 'path' | 'query'): void => {
      if (!schema) return;
      const json = input.schemaOf(schema) as { properties?: Record<string, JsonSchema>; required?: string[] };
      for (const [name, prop] of Object.entries(json.properties ?? {})) {
        const { description, ...rest } = prop;
        parameters.push({ name, in: at, required: at === 'path' || (json.required ?? []).includes(name), ...(description ? { description } : {}), schema: rest });
      }
    };
    fields(op.params, 'path');
    const pathNames = [...op.path.matchAll(/:(\w+)/g)].map((m) => m[1] as string);
    for (const p of parameters) if (!pathNames.includes(p.name as string)) throw new Error(`openapi: ${where} describes a path parameter "${String(p.name)}" its path does not have`);
    for (const name of pathNames) if (!parameters.some((p) => p.name === name)) parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
    fields(op.query, 'query');
    for (const [name, description] of Object.entries(op.headers ?? {})) parameters.push({ name, in: 'header', required: false, description, schema: { type: 'string' } });

    const responses: Record<string, JsonSchema> = {};
    for (const [status, r] of Object.entries(op.responses)) {
      const reply: Reply = r === null ? {} : isReply(r) ? r : { json: r };
      const content: JsonSchema = {};
      if (reply.json) content['application/json'] = { schema: output.schemaOf(reply.json) };
      if (reply.media) content[reply.media] = { schema: { type: 'string' } };
      const headers = Object.fromEntries(Object.entries(reply.headers ?? {}).map(([name, description]) => [name, { description, schema: { type: 'string' } }]));
      const description = reply.description ?? reply.json?.description ?? REASONS[Number(status)] ?? 'Answer';
      responses[status] = { description, ...(Object.keys(headers).length ? { headers } : {}), ...(Object.keys(content).length ? { content } : {}) };
    }
    for (const [status, codes] of errorsByStatus(op)) {
      if (responses[status]) {
        if (op.errors?.some((c) => ERRORS[c]?.status === status)) throw new Error(`openapi: ${where} lists errors under ${status}, which it also answers without an error`);
        continue;
      }
      const retry = status === 429 || status === 503 ? { headers: { 'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'string' } } } } : {};
      responses[status] = {
        description: codes.map((c) => `- \`${c}\`: ${ERRORS[c]?.means ?? ''}`).join('\n'),
        ...retry,
        content: {
          'application/json': {
            schema: { allOf: [{ $ref: `${REF_PREFIX}ErrorBody` }, { type: 'object', properties: { error: { type: 'object', properties: { code: { enum: codes } } } } }] },
          },
        },
      };
    }

    const operation: JsonSchema = {
      operationId: op.operationId,
      tags: [op.tag],
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      security: op.auth === 'none' ? [] : [{ [SECURITY_SCHEMES[op.auth].name]: [] }],
      ...(parameters.length ? { parameters } : {}),
      responses,
    };
    if (op.auth !== 'none') usedSchemes.add(op.auth);
    if (op.body || op.form) {
      const content: JsonSchema = {};
      if (op.body) content['application/json'] = { schema: input.schemaOf(op.body) };
      if (op.form) content['application/x-www-form-urlencoded'] = { schema: input.schemaOf(op.form) };
      operation.requestBody = { required: op.bodyRequired ?? true, content };
    }
    refsIn([operation.parameters, operation.requestBody], inputRefs);
    refsIn(operation.responses, outputRefs);
    const path = openApiPath(op.path);
    paths[path] = { ...paths[path], [op.method]: operation };
  }

  // What roomcast sends: the body is the server's (an output), the answers are the receiver's.
  const webhooks: Record<string, JsonSchema> = {};
  for (const hook of hooks) {
    if (operationIds.has(hook.name)) throw new Error(`openapi: operationId ${hook.name} is used twice (webhook)`);
    operationIds.add(hook.name);
    const post: JsonSchema = {
      operationId: hook.name,
      summary: hook.summary,
      ...(hook.description ? { description: hook.description } : {}),
      parameters: Object.entries(hook.headers).map(([name, description]) => ({ name, in: 'header', required: true, description, schema: { type: 'string' } })),
      requestBody: { required: true, content: { 'application/json': { schema: output.schemaOf(hook.body) } } },
      responses: Object.fromEntries(Object.entries(hook.responses).map(([status, description]) => [status, { description }])),
    };
    refsIn(post, outputRefs);
    webhooks[hook.name] = { post };
  }

  // The components the operations refer to, and those they refer to in turn: each direction's
  // from its own conversion. One both directions use must read the same in both.
  const closure = (from: Set<string>, component: (name: string) => JsonSchema | undefined): Map<string, JsonSchema> => {
    const found = new Map<string, JsonSchema>();
    const pending = [...from];
    for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
      if (found.has(name)) continue;
      const schema = component(name);
      if (!schema) throw new Error(`openapi: no component ${name}`);
      found.set(name, schema);
      pending.push(...refsIn(schema));
    }
    return found;
  };
  const schemas = closure(outputRefs, output.component);
  for (const [name, schema] of closure(inputRefs, input.component)) {
    const other = schemas.get(name);
    if (other && JSON.stringify(other) !== JSON.stringify(schema)) throw new Error(`openapi: ${name} reads differently as a request and as a response; use two schemas`);
    schemas.set(name, schema);
  }

  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: { title: 'roomcast', version: info.version ?? packageVersion(), description: OVERVIEW },
    servers: [{ url: info.publicUrl, description: 'the TLS proxy, the only public entry' }],
    tags: [...new Set(ops.map((o) => o.tag))].map((name) => ({ name })),
    paths,
    ...(hooks.length ? { webhooks } : {}),
    components: {
      schemas: Object.fromEntries([...schemas].sort(([a], [b]) => a.localeCompare(b))),
      securitySchemes: Object.fromEntries([...usedSchemes].sort().map((a) => [SECURITY_SCHEMES[a].name, SECURITY_SCHEMES[a].scheme])),
    },
  };
}

/**
 * GET /api/openapi.json. The document is made when the router is (start-up: a broken description
 * stops the server from starting) and made again when a route is described later.
 */
export function openApiRoutes(info: DocumentInfo, registry: ApiRegistry = apiRegistry): Router {
  const router = Router();
  registry.describe({
    operationId: 'openApiDocument',
    method: 'get',
    path: '/api/openapi.json',
    tag: 'meta',
    summary: 'This document',
    description: 'The OpenAPI 3.1 description of the whole API, made from the schemas the server validates with.',
    auth: 'none',
    responses: { 200: { description: 'The OpenAPI 3.1 document', json: z.record(z.string(), z.unknown()) } },
  });
  let made = { version: registry.version, doc: openApiDocument(registry, info) };
  router.get('/openapi.json', (_req, res) => {
    if (made.version !== registry.version) made = { version: registry.version, doc: openApiDocument(registry, info) };
    res.json(made.doc);
  });
  return router;
}
