// ComfyStream's prompt rules (aliases and input/output counts), the prompt schemas, the canonical
// form and the prompt id, and the `/object_info` shape of the node registry.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  canonicalPrompt,
  normalizePrompt,
  parsePrompt,
  PromptFormatError,
  PromptInputSchema,
  promptId,
  type ApiPrompt,
} from '../src/inference/prompt.ts';
import { registryFromModels } from '../src/inference/registry.ts';
import { objectInfo, objectInfoFor } from '../src/inference/object-info.ts';
import { validatePrompt } from '../src/inference/validate.ts';

const registry = registryFromModels(['m.onnx']);
const node = (class_type: string, inputs: Record<string, unknown> = {}) => ({ class_type, inputs });

function codeOf(p: ApiPrompt): string | undefined {
  try {
    normalizePrompt(p);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(PromptFormatError);
    return (err as PromptFormatError).code;
  }
}

describe('ComfyStream normalisation', () => {
  it('turns PrimaryInputLoadImage and a lone LoadImage into LoadTensor, PreviewImage/SaveImage into SaveTensor', () => {
    const a = normalizePrompt({
      '1': node('LoadImage', { image: 'x.png' }),
      '2': node('ImageInvert', { image: ['1', 0] }),
      '3': node('PreviewImage', { images: ['2', 0] }),
    });
    expect(a['1']).toMatchObject({ class_type: 'LoadTensor', inputs: {} });
    expect(a['3']).toMatchObject({ class_type: 'SaveTensor', inputs: { images: ['2', 0] } });
    const b = normalizePrompt({ '1': node('PrimaryInputLoadImage'), '3': node('SaveImage', { images: ['1', 0], filename_prefix: 'x' }) });
    expect(b['1'].class_type).toBe('LoadTensor');
    expect(b['3'].class_type).toBe('SaveTensor');
  });

  it("answers ComfyStream's errors for the wrong number of inputs or outputs", () => {
    expect(codeOf({ '1': node('PrimaryInputLoadImage'), '2': node('PrimaryInputLoadImage'), '3': node('SaveTensor') })).toBe('too_many_primary_inputs');
    expect(codeOf({ '1': node('LoadImage'), '2': node('LoadTensor'), '3': node('SaveTensor') })).toBe('too_many_inputs');
    expect(codeOf({ '1': node('LoadTensor'), '2': node('PreviewImage'), '3': node('SaveTensor') })).toBe('too_many_outputs');
    expect(codeOf({ '3': node('SaveTensor') })).toBe('missing_input');
    expect(codeOf({ '1': node('LoadTensor') })).toBe('missing_output');
    // With a primary input, other inputs are allowed (and left as they are).
    expect(codeOf({ '1': node('PrimaryInputLoadImage'), '2': node('LoadTensor'), '3': node('SaveTensor') })).toBeUndefined();
  });

  it('reports the rules through validatePrompt with their exact messages', () => {
    const cases: Array<[ApiPrompt, string]> = [
      [{ '1': node('PrimaryInputLoadImage'), '2': node('PrimaryInputLoadImage'), '3': node('SaveTensor') }, 'too many primary inputs in prompt'],
      [{ '1': node('LoadImage'), '2': node('LoadImage'), '3': node('SaveTensor') }, 'too many inputs in prompt'],
      [{ '1': node('LoadTensor'), '2': node('SaveImage'), '3': node('PreviewImage') }, 'too many outputs in prompt'],
      [{ '2': node('ImageInvert'), '3': node('SaveTensor') }, 'missing input'],
      [{ '1': node('LoadTensor'), '2': node('ImageInvert', { image: ['1', 0] }) }, 'missing output'],
    ];
    for (const [p, message] of cases) {
      const r = validatePrompt(p, { workspace: '/nonexistent', registry });
      expect(r.valid).toBe(false);
      if (!r.valid) {
        expect(r.error).toMatchObject({ type: 'invalid_prompt', message });
        expect(r.validation_errors[0]).toMatchObject({ node_id: null, error_type: 'invalid_prompt', message });
      }
    }
  });

  it('runs a SaveImage/LoadImage prompt as LoadTensor -> ... -> SaveTensor', () => {
    const r = validatePrompt(
      { '7': node('LoadImage', { image: 'a.png', upload: 'image' }), '8': node('ImageInvert', { image: ['7', 0] }), '9': node('SaveImage', { images: ['8', 0], filename_prefix: 'out' }) },
      { workspace: '/nonexistent', registry },
    );
    expect(r.valid && r.prompt.nodes.map((n) => [n.id, n.classType, n.inputs])).toEqual([
      ['7', 'LoadTensor', {}],
      ['8', 'ImageInvert', { image: { node: '7', slot: 0 } }],
      ['9', 'SaveTensor', { images: { node: '8', slot: 0 } }],
    ]);
  });
});

describe('prompt schemas and canonical id', () => {
  it('accepts an object, a JSON string, or a list of them, with _meta and __value__ literals', () => {
    const p = { '1': { class_type: 'LoadTensor', inputs: { xs: { __value__: [1, 2] } }, _meta: { title: 'in' } } };
    expect(PromptInputSchema.safeParse(p).success).toBe(true);
    expect(PromptInputSchema.safeParse(JSON.stringify(p)).success).toBe(true);
    expect(PromptInputSchema.safeParse([p, JSON.stringify(p)]).success).toBe(true);
    expect(PromptInputSchema.safeParse('{oops').success).toBe(false);
    expect(PromptInputSchema.safeParse({ '1': 'LoadTensor' }).success).toBe(false);
    expect(() => parsePrompt('[1,2]')).toThrow(PromptFormatError);
  });

  it('gives the same id whatever the key order or titles, and a different one when a value changes', () => {
    const a: ApiPrompt = {
      '1': { class_type: 'LoadTensor', inputs: {} },
      '2': { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 3, sigma: 1.5 } },
      '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } },
    };
    const b: ApiPrompt = {
      '3': { inputs: { images: ['2', 0] }, class_type: 'SaveTensor', _meta: { title: 'out' } },
      '2': { inputs: { sigma: 1.5, blur_radius: 3, image: ['1', 0] }, class_type: 'ImageBlur' },
      '1': { inputs: {}, class_type: 'LoadTensor' },
    };
    expect(canonicalPrompt(a)).toBe(canonicalPrompt(b));
    const id = promptId(canonicalPrompt(a));
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(id).toBe(createHash('md5').update(canonicalPrompt(a)).digest('hex').slice(0, 12));
    const c = structuredClone(a);
    c['2'].inputs.sigma = 2;
    expect(promptId(canonicalPrompt(c))).not.toBe(id);
    const ra = validatePrompt(a, { workspace: '/x', registry });
    const rb = validatePrompt(JSON.stringify(b), { workspace: '/x', registry });
    expect(ra.valid && rb.valid && ra.promptId === rb.promptId && ra.prompt.id === ra.promptId).toBe(true);
  });

  it('writes canonical JSON with sorted keys at every depth', () => {
    expect(canonicalJson({ b: [{ z: 1, a: 2 }], a: 'x' })).toBe('{"a":"x","b":[{"a":2,"z":1}]}');
  });
});

describe('object_info', () => {
  it("describes each class with ComfyUI's /object_info fields", () => {
    const info = objectInfo(registry);
    expect(Object.keys(info)).toEqual(
      ['ImageBlend', 'ImageBlur', 'ImageInvert', 'ImageQuantize', 'ImageScale', 'ImageScaleBy', 'ImageSharpen', 'LoadTensor', 'OnnxModel', 'SaveTensor', 'TextRedact'],
    );
    expect(info.ImageBlur).toEqual({
      input: {
        required: {
          image: ['IMAGE'],
          blur_radius: ['INT', { default: 1, min: 1, max: 31, step: 1 }],
          sigma: ['FLOAT', { default: 1.0, min: 0.1, max: 10.0, step: 0.1 }],
        },
      },
      input_order: { required: ['image', 'blur_radius', 'sigma'] },
      output: ['IMAGE'],
      output_is_list: [false],
      output_name: ['IMAGE'],
      name: 'ImageBlur',
      display_name: 'Image Blur',
      description: expect.any(String),
      category: 'image/postprocessing',
      output_node: false,
    });
    expect(info.SaveTensor).toMatchObject({ output: [], output_node: true, input: { required: { images: ['IMAGE'] } } });
    expect(info.OnnxModel.input.required!.model_name).toEqual([['m.onnx']]);
    expect(info.TextRedact.input_order).toEqual({ required: ['image'], optional: ['mode', 'threshold', 'padding', 'blur_radius'] });
    expect(JSON.parse(JSON.stringify(info))).toEqual(info);
  });

  it('answers one class, or {} for an unknown one', () => {
    expect(Object.keys(objectInfoFor(registry, 'ImageScale'))).toEqual(['ImageScale']);
    expect(objectInfoFor(registry, 'ImageScale').ImageScale.input.required!.width).toEqual(['INT', { default: 512, min: 0, max: 16384, step: 1 }]);
    expect(objectInfoFor(registry, 'KSampler')).toEqual({});
  });
});
