// 2,000 random request bodies (random JSON, mutated valid bodies, raw bytes) against every route
// that takes one: the server never answers 5xx and nothing starts or changes.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, startEdge, type TestEdge } from './helpers/http-app.ts';

let edge: TestEdge;
beforeAll(async () => {
  edge = await startEdge();
});
afterAll(async () => edge.close());

const ROUTES = [
  '/stream/start',
  '/live/stream/start',
  '/stream',
  '/live-video-to-video',
  '/stream/fz/update-prompts',
  '/stream/fz/switch-prompt',
  '/stream/fz/restart-worker',
  '/stream/fz/stop',
  '/stream/stop',
];

// Bodies that look almost right, so the fuzzing reaches past the schema into prompt validation and the
// allow-list. The input URL is never on the allow-list, so no body can start a stream.
const nearlyValid = fc.record(
  {
    subscribe_url: fc.oneof(fc.constant('http://fuzz.invalid/in'), fc.webUrl(), fc.string()),
    publish_url: fc.oneof(fc.constant('http://127.0.0.1:9/out'), fc.webUrl(), fc.anything()),
    gateway_request_id: fc.oneof(fc.stringMatching(/^[a-z0-9_-]{1,20}$/), fc.string(), fc.integer()),
    params: fc.record(
      {
        width: fc.oneof(fc.integer({ min: -10, max: 5000 }), fc.double(), fc.string()),
        height: fc.integer({ min: -10, max: 5000 }),
        prompt: fc.oneof(fc.json(), fc.string(), fc.object()),
        prompts: fc.oneof(fc.array(fc.object(), { maxLength: 3 }), fc.anything()),
        dedicated_worker: fc.anything(),
        use_prompt_worker: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    prompt: fc.oneof(fc.json(), fc.object()),
    prompts: fc.array(fc.object(), { maxLength: 3 }),
    prompt_id: fc.anything(),
  },
  { requiredKeys: [] },
);

const body = fc.oneof(
  nearlyValid.map((b) => ({ raw: JSON.stringify(b), type: 'application/json' })),
  fc.jsonValue().map((v) => ({ raw: JSON.stringify(v), type: 'application/json' })),
  fc.uint8Array({ maxLength: 300 }).map((b) => ({ raw: Buffer.from(b).toString('latin1'), type: 'application/json' })),
  fc.string({ maxLength: 200 }).map((s) => ({ raw: s, type: fc.sample(fc.constantFrom('application/json', 'text/plain', ''), 1)[0] })),
);

it('answers 2,000 random bodies without a 5xx and without changing any state', async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ROUTES), body, async (route, b) => {
      const headers: Record<string, string> = b.type ? { 'content-type': b.type } : {};
      const r = await call(edge.origin, 'POST', route, b.raw, headers);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      expect(r.status, `${route} ${b.raw.slice(0, 200)}`).toBeLessThan(500);
      expect(r.json, `${route} answered non-JSON: ${r.text.slice(0, 200)}`).toMatchObject({ error: expect.any(String), message: expect.any(String) });
    }),
    { numRuns: 2000 },
  );
  expect(await edge.runtime.listStreams()).toEqual([]);
  expect(edge.runtime.inspectActors()).toEqual([]);
  // The fuzzing must have reached several kinds of answer, not one wall of 400s from the body parser.
  expect(statuses.size).toBeGreaterThanOrEqual(3);
});
