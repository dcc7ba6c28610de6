// Property tests: 10,000 random and mutated prompts. Validation never throws (nor falls into its
// catch-all), and whatever it accepts is runnable: every node known, inputs complete, typed and in
// range, links pointing backwards (acyclic) at IMAGE outputs, one LoadTensor, one SaveTensor fed by a link,
// and nothing but the output and its dependencies.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { registryFromModels, declaredInputs } from '../src/inference/registry.ts';
import type { InputSpec } from '../src/inference/nodes.ts';
import { isLink, type ResolvedPrompt } from '../src/inference/types.ts';
import { validatePrompt, type ValidationResult } from '../src/inference/validate.ts';

const registry = registryFromModels(['depth.onnx', 'style.onnx']);
const opts = { workspace: '/unused', registry };
const PROCESSING = registry.classes().filter((c) => c !== 'LoadTensor' && c !== 'SaveTensor');
const ALIASES = ['PreviewImage', 'SaveImage', 'LoadImage', 'PrimaryInputLoadImage'];
const IDS = ['1', '2', '3', '4', '5', '6', '7', '8'];

/** An independent check that a resolved prompt can run one frame through (reads declarations only). */
function assertRunnable(rp: ResolvedPrompt): void {
  const position = new Map(rp.nodes.map((n, i) => [n.id, i]));
  expect(position.size).toBe(rp.nodes.length);
  let loads = 0;
  let saves = 0;
  rp.nodes.forEach((n, i) => {
    const def = registry.get(n.classType);
    expect(def, n.classType).toBeDefined();
    if (n.classType === 'LoadTensor') loads++;
    if (n.classType === 'SaveTensor') saves++;
    const declared = declaredInputs(def!);
    for (const key of Object.keys(n.inputs)) expect(declared.some((d) => d.name === key)).toBe(true);
    for (const d of declared) {
      const value = n.inputs[d.name];
      const o = d.spec[1] ?? {};
      if (value === undefined) {
        expect(d.category === 'optional' && o.default === undefined).toBe(true);
        continue;
      }
      if (d.type === 'IMAGE') {
        expect(isLink(value)).toBe(true);
        if (!isLink(value)) continue;
        const src = position.get(value.node);
        expect(src !== undefined && src < i).toBe(true);
        const srcDef = registry.get(rp.nodes[src!].classType)!;
        expect(srcDef.RETURN_TYPES[value.slot]).toBe('IMAGE');
      } else if (d.type === 'INT' || d.type === 'FLOAT') {
        expect(typeof value).toBe('number');
        const num = value as number;
        expect(Number.isFinite(num)).toBe(true);
        if (d.type === 'INT') expect(Number.isInteger(num)).toBe(true);
        if (o.min !== undefined) expect(num).toBeGreaterThanOrEqual(o.min);
        if (o.max !== undefined) expect(num).toBeLessThanOrEqual(o.max);
      } else if (typeof d.type !== 'string') {
        expect(d.type).toContain(value);
      }
    }
  });
  expect(loads).toBe(1);
  expect(saves).toBe(1);
  expect(rp.nodes[position.get(rp.inputNode)!].classType).toBe('LoadTensor');
  expect(rp.nodes.at(-1)!.id).toBe(rp.outputNode);
  expect(rp.nodes.at(-1)!.classType).toBe('SaveTensor');
  expect(isLink(rp.nodes.at(-1)!.inputs.images)).toBe(true);
  // Only the output and its dependencies.
  const needed = new Set([rp.outputNode]);
  for (let i = rp.nodes.length - 1; i >= 0; i--) {
    if (!needed.has(rp.nodes[i].id)) continue;
    for (const v of Object.values(rp.nodes[i].inputs)) if (isLink(v)) needed.add(v.node);
  }
  expect(needed.size).toBe(rp.nodes.length);
}

const junk = fc.oneof(
  fc.integer({ min: -1000, max: 100_000 }),
  fc.double(),
  fc.string({ maxLength: 6 }),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('5', '0.5', 'abc', 'inf', '-inf', 'nan', ' 7 ', '1_0', '-0', '1e3', '', 'blur', 'none', 'style.onnx'),
  fc.record({ __value__: fc.array(fc.integer(), { maxLength: 3 }) }),
  fc.array(fc.oneof(fc.string({ maxLength: 3 }), fc.integer({ min: -1, max: 3 })), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);
const anyLink = fc.tuple(fc.constantFrom(...IDS, '99', ''), fc.oneof(fc.constant(0), fc.integer({ min: -1, max: 2 }), fc.double()));

function goodValue(spec: InputSpec, earlier: string[]): fc.Arbitrary<unknown> {
  const [type, o = {}] = spec;
  if (type === 'IMAGE') return fc.constantFrom(...earlier).map((id) => [id, 0]);
  if (type === 'INT') return fc.integer({ min: o.min ?? -1000, max: o.max ?? 1000 });
  if (type === 'FLOAT') return fc.double({ min: o.min ?? -1000, max: o.max ?? 1000, noNaN: true });
  if (typeof type !== 'string' && type.length > 0) return fc.constantFrom(...type);
  return junk;
}

/** Mostly a good value; sometimes one just outside the range, the same value as text, or junk. */
function nearValue(spec: InputSpec, earlier: string[]): fc.Arbitrary<unknown> {
  const [type, o = {}] = spec;
  const near: Array<fc.Arbitrary<unknown>> = [junk];
  if (type === 'INT' || type === 'FLOAT') {
    const step = type === 'INT' ? 1 : 0.001;
    if (o.min !== undefined) near.push(fc.constantFrom(o.min - step, o.min - 10 * step, String(o.min - step)));
    if (o.max !== undefined) near.push(fc.constantFrom(o.max + step, o.max * 3 + 7, String(o.max + step)));
    near.push(goodValue(spec, earlier).map(String), fc.constantFrom('nan', 'inf', '-inf', '1e400'));
  }
  return fc.oneof({ weight: 12, arbitrary: goodValue(spec, earlier) }, { weight: 1, arbitrary: fc.oneof(...near) });
}

/** A valid prompt: LoadTensor "1", then processing nodes linking to earlier ones, then SaveTensor. */
const validPrompt = fc.integer({ min: 0, max: 6 }).chain((k) => {
  const parts: Array<fc.Arbitrary<[string, unknown]>> = [fc.constant(['1', { class_type: 'LoadTensor', inputs: {} }])];
  for (let i = 0; i < k; i++) {
    const id = String(i + 2);
    const earlier = IDS.slice(0, i + 1);
    parts.push(
      fc.constantFrom(...PROCESSING).chain((c) => {
        const inputs: Record<string, fc.Arbitrary<unknown>> = {};
        for (const d of declaredInputs(registry.get(c)!)) inputs[d.name] = nearValue(d.spec, earlier);
        return fc.record(inputs, { requiredKeys: declaredInputs(registry.get(c)!).filter((d) => d.category === 'required').map((d) => d.name) }).map(
          (inp) => [id, { class_type: c, inputs: inp }] as [string, unknown],
        );
      }),
    );
  }
  const last = String(k + 1);
  parts.push(fc.constantFrom('SaveTensor', 'PreviewImage', 'SaveImage').map((c) => ['9', { class_type: c, inputs: { images: [last, 0] } }]));
  return fc.tuple(...parts).map((entries) => Object.fromEntries(entries) as Record<string, { class_type?: unknown; inputs?: Record<string, unknown> }>);
});

const mutation = fc.record({
  op: fc.constantFrom('setInput', 'deleteInput', 'deleteNode', 'setClass', 'dropClass', 'addNode', 'relink'),
  pick: fc.nat(),
  name: fc.constantFrom('image', 'images', 'image1', 'image2', 'blur_radius', 'sigma', 'colors', 'dither', 'model_name', 'mode', 'width', 'scale_by', 'padding', 'other'),
  value: fc.oneof(junk, anyLink),
  cls: fc.constantFrom(...registry.classes(), ...ALIASES, 'KSampler'),
});

const mutatedPrompt = fc.tuple(validPrompt, fc.array(mutation, { maxLength: 3 }), fc.boolean()).map(([p, muts, asString]) => {
  for (const m of muts) {
    const keys = Object.keys(p);
    const key = keys[m.pick % Math.max(1, keys.length)];
    const node = key === undefined ? undefined : p[key];
    switch (m.op) {
      case 'setInput':
        if (node) node.inputs = { ...node.inputs, [m.name]: m.value };
        break;
      case 'deleteInput':
        if (node?.inputs) delete node.inputs[m.name];
        break;
      case 'deleteNode':
        if (key !== undefined) delete p[key];
        break;
      case 'setClass':
        if (node) node.class_type = m.cls;
        break;
      case 'dropClass':
        if (node) delete node.class_type;
        break;
      case 'addNode':
        p[String(10 + (m.pick % 5))] = { class_type: m.cls, inputs: { [m.name]: m.value } };
        break;
      case 'relink':
        if (node) node.inputs = { ...node.inputs, [m.name]: [IDS[m.pick % IDS.length], 0] };
        break;
    }
  }
  return asString ? JSON.stringify(p) : p;
});

/** Arbitrary structures of nodes with random classes and values. */
const randomPrompt = fc.dictionary(
  fc.constantFrom(...IDS, '__proto__', 'constructor', ''),
  fc.record(
    {
      class_type: fc.oneof(fc.constantFrom(...registry.classes(), ...ALIASES, 'Nope'), junk),
      inputs: fc.oneof(fc.dictionary(mutation.map((m) => m.name), fc.oneof(junk, anyLink), { maxKeys: 4 }), junk),
      _meta: fc.record({ title: fc.string({ maxLength: 4 }) }),
    },
    { requiredKeys: [] },
  ),
  { maxKeys: 6 },
);

describe('validation under random input', () => {
  it('never throws and accepts only runnable graphs (10,000 prompts)', () => {
    let accepted = 0;
    let refused = 0;
    const check = (input: unknown): void => {
      let r: ValidationResult | undefined;
      expect(() => {
        r = validatePrompt(input, opts);
      }).not.toThrow();
      if (r!.valid) {
        accepted++;
        assertRunnable(r!.prompt);
      } else {
        refused++;
        expect(r!.error.type).not.toBe('exception_during_validation');
        expect(r!.validation_errors.length).toBeGreaterThan(0);
        expect(JSON.parse(JSON.stringify(r))).toBeTruthy();
      }
    };
    fc.assert(fc.property(mutatedPrompt, check), { numRuns: 6000, seed: 42 });
    fc.assert(fc.property(randomPrompt, check), { numRuns: 3000, seed: 43 });
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.json(), fc.anything()), check), { numRuns: 1000, seed: 44 });
    // Both outcomes must be common, or the property says little.
    expect(accepted, `accepted ${accepted}, refused ${refused}`).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });
});
