import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { App } from './app.ts';
import { errorAnswer, errorResponses } from './schemas.ts';

/**
 * How the OpenAPI spec (GET /api/openapi.json) is assembled from the routes' zod schemas. The schemas given an `id`
 * with `.meta({ id })` become components and are referenced by that name; the web app's types are generated from the
 * result (`npm run api-types`).
 */

/**
 * Gives every documented route the shared error answers (any 4xx or 5xx status it does not describe itself), so no
 * route lists them by hand; they also serialize its error bodies. Install it before the routes are registered.
 */
export function describeErrorAnswers(app: App): void {
  app.addHook('onRoute', (route) => {
    const schema = route.schema;
    if (!schema || schema.hide) return;
    route.schema = { ...schema, response: { ...errorResponses, ...(schema.response as Record<string, unknown> | undefined) } };
  });
}

export const swaggerOptions: FastifyDynamicSwaggerOptions = {
  openapi: {
    info: { title: 'Agentyard API', version: '0.1.0', description: 'Run Claude Code agents in isolated sandboxes.' },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API token from POST /api/tokens' },
        cookie: { type: 'apiKey', in: 'cookie', name: 'agentyard_session' },
      },
    },
    security: [{ bearer: [] }, { cookie: [] }],
  },
  transform: jsonSchemaTransform,
  transformObject: (document) => withSharedErrorAnswer(withoutUnusedComponents(jsonSchemaTransformObject(document))),
};

/**
 * Each component is emitted twice, as the server reads it (`NameInput`) and as it writes it (`Name`); a shape that
 * only ever travels one way leaves the other unused. Unused `…Input` copies are dropped, so the spec lists each once.
 */
function withoutUnusedComponents<Document extends { paths?: unknown; components?: { schemas?: object } }>(document: Document): Document {
  const schemas: Record<string, unknown> = { ...document.components?.schemas };
  for (;;) {
    const used = JSON.stringify({ paths: document.paths, schemas });
    const unused = Object.keys(schemas).filter((name) => name.endsWith('Input') && !used.includes(JSON.stringify(`#/components/schemas/${name}`)));
    if (unused.length === 0) return { ...document, components: { ...document.components, schemas } };
    for (const name of unused) delete schemas[name];
  }
}

type Operations = Record<string, { responses?: Record<string, unknown> }>;

/** The error answer as the spec of each route holds it; one shared response, `components.responses.Error`, replaces it. */
const inlineErrorAnswer = JSON.stringify({ description: errorAnswer.description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

/** Changes the document in place: @fastify/swagger builds it anew for each transform. */
function withSharedErrorAnswer<Document extends { paths?: object; components?: object }>(document: Document): Document {
  for (const operations of Object.values((document.paths ?? {}) as Record<string, Operations>)) {
    for (const { responses = {} } of Object.values(operations)) {
      for (const [status, answer] of Object.entries(responses)) {
        if (JSON.stringify(answer) === inlineErrorAnswer) responses[status] = { $ref: '#/components/responses/Error' };
      }
    }
  }
  return { ...document, components: { ...document.components, responses: { Error: JSON.parse(inlineErrorAnswer) } } };
}
