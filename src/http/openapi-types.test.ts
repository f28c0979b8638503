import { readFile } from 'node:fs/promises';
import type { OpenAPI3 } from 'openapi-typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApiSpec, renderApiTypes, schemaFile } from '../../scripts/api-types.ts';
import { eventDataSchema } from '../core/events.ts';

/** The parts of the spec these tests read. */
interface Schema {
  $ref?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
}
interface Answer {
  $ref?: string;
  content?: Record<string, { schema: Schema }>;
}
interface Spec {
  paths: Record<string, Record<string, { responses?: Record<string, Answer> }>>;
  components: { schemas: Record<string, Schema>; responses: Record<string, Answer> };
}

/** Where two texts first differ, for a failure message a person can act on. */
function firstDifference(expected: string, actual: string): string {
  const expectedLines = expected.split('\n');
  const actualLines = actual.split('\n');
  const line = expectedLines.findIndex((text, index) => text !== actualLines[index]);
  const at = line === -1 ? expectedLines.length : line;
  const show = (text: string | undefined): string => JSON.stringify(text === undefined ? '(end)' : text.trim().slice(0, 160));
  return `line ${at + 1}: generated ${show(expectedLines[at])}, committed ${show(actualLines[at])}`;
}

describe('the OpenAPI spec and the web app’s types', () => {
  let document: OpenAPI3;
  let spec: Spec;
  /** The component a reference names. */
  const component = (reference: Schema | undefined): Schema => {
    const schema = reference?.$ref ? spec.components.schemas[reference.$ref.replace('#/components/schemas/', '')] : undefined;
    if (!schema) throw new Error(`expected a reference to a component schema, got ${JSON.stringify(reference)}`);
    return schema;
  };

  beforeAll(async () => {
    document = await buildApiSpec();
    spec = document as unknown as Spec;
  });

  it('generates exactly the committed web/src/api/schema.d.ts', async () => {
    const generated = await renderApiTypes(document);
    const committed = await readFile(schemaFile, 'utf8');
    if (generated !== committed) {
      expect.fail(`web/src/api/schema.d.ts does not match the server's OpenAPI spec (${firstDifference(generated, committed)}): run npm run api-types`);
    }
  });

  it('describes every event type as a component, and the event stream as those events', () => {
    const described = (spec.components.schemas.EventData?.oneOf ?? []).map((member) => component(member).properties?.type?.enum?.[0]);
    const known = eventDataSchema.options.map((option) => option.shape.type.value);
    expect(known).toEqual(expect.arrayContaining(['turn.queued', 'turn.started', 'message.delta', 'message.completed', 'tool.started', 'tool.ended', 'turn.ended', 'error']));
    expect(described.sort()).toEqual([...known].sort());

    const streamed = spec.paths['/api/conversations/{id}/events']?.get?.responses?.['200']?.content?.['text/event-stream']?.schema;
    const conversationEvent = component(streamed?.anyOf?.[0]);
    expect(Object.keys(conversationEvent.allOf?.[0]?.properties ?? {})).toEqual(['seq', 'createdAt']);
    expect(conversationEvent.allOf?.[1]).toEqual({ $ref: '#/components/schemas/EventData' });
  });

  it('describes the shared error answer on every operation, once', () => {
    const operations = Object.entries(spec.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, responses: operation.responses ?? {} })),
    );
    expect(operations.length).toBeGreaterThan(20);
    const shared = '#/components/responses/Error';
    expect(operations.filter(({ responses }) => responses['4XX']?.$ref !== shared || responses['5XX']?.$ref !== shared).map(({ route }) => route)).toEqual([]);
    const body = component(spec.components.responses.Error?.content?.['application/json']?.schema);
    expect(body.properties?.error?.required).toEqual(expect.arrayContaining(['code', 'message']));
  });
});
