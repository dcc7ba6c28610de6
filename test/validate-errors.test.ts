// ComfyUI-compatible validation: each error type with ComfyUI's type/message/details/extra_info, the
// flattened `validation_errors`, and what a valid prompt resolves to.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWorkspace, listModels } from '../src/inference/workspace.ts';
import { validatePrompt, validatePrompts, type ValidationFailure, type ValidationResult } from '../src/inference/validate.ts';
import { tempDir } from './helpers/clips.ts';

let dir: { path: string; remove(): void };
let workspace: string;

beforeAll(() => {
  dir = tempDir('sf-validate-');
  workspace = join(dir.path, 'ws');
  // A workspace with two models (listModels only looks at the file names).
  mkdirSync(join(workspace, 'models'), { recursive: true });
  writeFileSync(join(workspace, 'models', 'a_style.onnx'), 'x');
  writeFileSync(join(workspace, 'models', 'b_depth.onnx'), 'x');
  writeFileSync(join(workspace, 'models', 'notes.txt'), 'not a model');
});
afterAll(() => dir.remove());

const link = (id: string, slot = 0) => [id, slot];

/** LoadTensor "1" -> <middle> "2" -> SaveTensor "9". */
function chain(classType: string, inputs: Record<string, unknown>): Record<string, unknown> {
  return {
    '1': { class_type: 'LoadTensor', inputs: {} },
    '2': { class_type: classType, inputs: { image: link('1'), ...inputs } },
    '9': { class_type: 'SaveTensor', inputs: { images: link('2') } },
  };
}

function failed(r: ValidationResult): ValidationFailure {
  expect(r.valid).toBe(false);
  return r as ValidationFailure;
}

function v(prompt: unknown) {
  return validatePrompt(prompt, { workspace });
}

describe('prompt validation', () => {
  it("reports the seed's ImageBlur example: blur_radius given, sigma missing -> required_input_missing", () => {
    const r = failed(v(chain('ImageBlur', { blur_radius: 3 })));
    expect(r.error).toEqual({ type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} });
    expect(r.node_errors).toEqual({
      '2': {
        errors: [{ type: 'required_input_missing', message: 'Required input is missing', details: 'sigma', extra_info: { input_name: 'sigma' } }],
        dependent_outputs: ['9'],
        class_type: 'ImageBlur',
      },
    });
    expect(r.validation_errors).toEqual([
      {
        node_id: '2',
        node_type: 'ImageBlur',
        error_type: 'required_input_missing',
        message: 'Required input is missing',
        details: 'sigma',
        input_name: 'sigma',
        received_value: null,
        valid_options: [],
      },
    ]);
  });

  it('reports blur_radius 50 as value_bigger_than_max with ComfyUI message', () => {
    const r = failed(v(chain('ImageBlur', { blur_radius: 50, sigma: 1 })));
    expect(r.node_errors['2'].errors).toEqual([
      {
        type: 'value_bigger_than_max',
        message: 'Value 50 bigger than max of 31',
        details: 'blur_radius',
        extra_info: { input_name: 'blur_radius', input_config: ['INT', { default: 1, min: 1, max: 31, step: 1 }], received_value: 50 },
      },
    ]);
  });

  it('formats float bounds and values the way Python prints them', () => {
    const small = failed(v(chain('ImageBlur', { blur_radius: 1, sigma: 0.05 })));
    expect(small.node_errors['2'].errors[0]).toMatchObject({ type: 'value_smaller_than_min', message: 'Value 0.05 smaller than min of 0.1', details: 'sigma' });
    const big = failed(v(chain('ImageBlur', { blur_radius: 1, sigma: 11 })));
    expect(big.node_errors['2'].errors[0].message).toBe('Value 11.0 bigger than max of 10.0');
    const inf = failed(v(chain('ImageBlur', { blur_radius: 1, sigma: 'inf' })));
    expect(inf.node_errors['2'].errors[0].message).toBe('Value inf bigger than max of 10.0');
    const tiny = failed(v(chain('ImageScaleBy', { upscale_method: 'area', scale_by: 1e-7 })));
    expect(tiny.node_errors['2'].errors[0].message).toBe('Value 1e-07 smaller than min of 0.01');
  });

  it('coerces literals to the declared type ("5" -> 5 for INT) and fills defaults', () => {
    const r = v(chain('ImageBlur', { blur_radius: '5', sigma: '0.5', extra_undeclared: 'ignored' }));
    expect(r.valid).toBe(true);
    if (!r.valid) return;
    const blur = r.prompt.nodes.find((n) => n.id === '2')!;
    expect(blur.inputs).toEqual({ image: { node: '1', slot: 0 }, blur_radius: 5, sigma: 0.5 });
    const redact = v(chain('TextRedact', {}));
    expect(redact.valid && redact.prompt.nodes[1].inputs).toEqual({
      image: { node: '1', slot: 0 },
      mode: 'blur',
      threshold: 0.3,
      padding: 10,
      blur_radius: 15,
    });
    // Python's int() truncates a float and reads booleans as 0/1.
    const trunc = v(chain('ImageBlur', { blur_radius: 2.9, sigma: true }));
    expect(trunc.valid && trunc.prompt.nodes[1].inputs).toMatchObject({ blur_radius: 2, sigma: 1 });
  });

  it('reports a literal that cannot be converted as invalid_input_type', () => {
    const r = failed(v(chain('ImageBlur', { blur_radius: 'abc', sigma: 1 })));
    expect(r.node_errors['2'].errors).toEqual([
      {
        type: 'invalid_input_type',
        message: 'Failed to convert an input value to a INT value',
        details: "blur_radius, abc, invalid literal for int() with base 10: 'abc'",
        extra_info: {
          input_name: 'blur_radius',
          input_config: ['INT', { default: 1, min: 1, max: 31, step: 1 }],
          received_value: 'abc',
          exception_message: "invalid literal for int() with base 10: 'abc'",
        },
      },
    ]);
    const f = failed(v(chain('ImageBlur', { blur_radius: 1, sigma: null })));
    expect(f.node_errors['2'].errors[0]).toMatchObject({
      type: 'invalid_input_type',
      message: 'Failed to convert an input value to a FLOAT value',
      details: "sigma, None, float() argument must be a string or a real number, not 'NoneType'",
    });
    const nan = failed(v(chain('ImageBlur', { blur_radius: 1, sigma: 'nan' })));
    expect(nan.node_errors['2'].errors[0].type).toBe('invalid_input_type');
    const image = failed(v(chain('ImageInvert', { image: 'frame.png' })));
    expect(image.node_errors['2'].errors[0]).toMatchObject({ type: 'invalid_input_type', message: 'Failed to convert an input value to a IMAGE value' });
  });

  it('reports a combo value outside its list as value_not_in_list with the options', () => {
    const r = failed(v(chain('ImageQuantize', { colors: 16, dither: 'ordered' })));
    expect(r.node_errors['2'].errors[0]).toEqual({
      type: 'value_not_in_list',
      message: 'Value not in list',
      details: "dither: 'ordered' not in ['none', 'floyd-steinberg', 'bayer-2', 'bayer-4', 'bayer-8', 'bayer-16']",
      extra_info: {
        input_name: 'dither',
        input_config: [['none', 'floyd-steinberg', 'bayer-2', 'bayer-4', 'bayer-8', 'bayer-16'], {}],
        received_value: 'ordered',
      },
    });
    expect(r.validation_errors[0].valid_options).toEqual(['none', 'floyd-steinberg', 'bayer-2', 'bayer-4', 'bayer-8', 'bayer-16']);
  });

  it('reports a model missing from the workspace as value_not_in_list listing the models present', () => {
    const r = failed(v(chain('OnnxModel', { model_name: 'missing.onnx' })));
    expect(r.node_errors['2'].errors[0]).toMatchObject({
      type: 'value_not_in_list',
      details: "model_name: 'missing.onnx' not in ['a_style.onnx', 'b_depth.onnx']",
    });
    expect(r.validation_errors[0]).toMatchObject({ input_name: 'model_name', received_value: 'missing.onnx', valid_options: ['a_style.onnx', 'b_depth.onnx'] });
    expect(v(chain('OnnxModel', { model_name: 'b_depth.onnx' })).valid).toBe(true);
  });

  it('lists the built-in model and an added one in a workspace made by ensureWorkspace', () => {
    const ws = ensureWorkspace(join(dir.path, 'fresh'));
    writeFileSync(join(ws, 'models', 'extra.onnx'), 'x');
    const models = listModels(ws);
    expect(models).toContain('extra.onnx');
    expect(models.length).toBeGreaterThan(1);
    const r = failed(validatePrompt(chain('OnnxModel', { model_name: 'nope.onnx' }), { workspace: ws }));
    expect(r.validation_errors[0].valid_options).toEqual(models);
    expect(validatePrompt(chain('OnnxModel', { model_name: 'extra.onnx' }), { workspace: ws }).valid).toBe(true);
  });

  it('answers invalid_prompt for an unknown class and for a node without class_type', () => {
    const unknown = failed(v({ ...chain('ImageInvert', {}), '2': { class_type: 'KSampler', inputs: {} } }));
    expect(unknown.error).toEqual({ type: 'invalid_prompt', message: 'Cannot execute because node KSampler does not exist.', details: "Node ID '#2'", extra_info: {} });
    expect(unknown.node_errors).toEqual({});
    expect(unknown.validation_errors).toEqual([
      { node_id: null, node_type: null, error_type: 'invalid_prompt', message: 'Cannot execute because node KSampler does not exist.', details: "Node ID '#2'", input_name: null, received_value: null, valid_options: [] },
    ]);
    const missing = failed(v({ ...chain('ImageInvert', {}), '2': { inputs: {} } }));
    expect(missing.error).toEqual({ type: 'invalid_prompt', message: 'Cannot execute because a node is missing the class_type property.', details: "Node ID '#2'", extra_info: {} });
  });

  it('answers prompt_no_outputs when nothing is an output node (without ComfyStream normalisation)', () => {
    const r = failed(validatePrompt({ '1': { class_type: 'LoadTensor', inputs: {} } }, { workspace, normalize: false }));
    expect(r.error).toEqual({ type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} });
  });

  it('reports malformed links as bad_linked_input', () => {
    const short = failed(v(chain('ImageInvert', { image: ['1'] })));
    expect(short.node_errors['2'].errors[0]).toEqual({
      type: 'bad_linked_input',
      message: 'Bad linked input, must be a length-2 list of [node_id, slot_index]',
      details: 'image',
      extra_info: { input_name: 'image', input_config: ['IMAGE', {}], received_value: ['1'] },
    });
    const ghost = failed(v(chain('ImageInvert', { image: ['77', 0] })));
    expect(ghost.node_errors['2'].errors[0]).toMatchObject({ type: 'bad_linked_input', details: "image, node '77' does not exist" });
    const slot = failed(v(chain('ImageInvert', { image: ['1', 3] })));
    expect(slot.node_errors['2'].errors[0]).toMatchObject({ type: 'bad_linked_input', details: 'image, output slot 3 out of range for LoadTensor' });
  });

  it('reports a link into a non-IMAGE input as return_type_mismatch', () => {
    const r = failed(v(chain('ImageBlur', { blur_radius: ['1', 0], sigma: 1 })));
    expect(r.node_errors['2'].errors[0]).toEqual({
      type: 'return_type_mismatch',
      message: 'Return type mismatch between linked nodes',
      details: 'blur_radius, IMAGE != INT',
      extra_info: {
        input_name: 'blur_radius',
        input_config: ['INT', { default: 1, min: 1, max: 31, step: 1 }],
        received_type: 'IMAGE',
        linked_node: ['1', 0],
      },
    });
  });

  it('reports a cycle among the dependencies as dependency_cycle on each node of it', () => {
    const r = failed(
      v({
        '1': { class_type: 'LoadTensor', inputs: {} },
        '2': { class_type: 'ImageBlend', inputs: { image1: ['1', 0], image2: ['3', 0], blend_factor: 0.5, blend_mode: 'normal' } },
        '3': { class_type: 'ImageInvert', inputs: { image: ['2', 0] } },
        '9': { class_type: 'SaveTensor', inputs: { images: ['3', 0] } },
      }),
    );
    expect(Object.keys(r.node_errors).sort()).toEqual(['2', '3']);
    expect(r.node_errors['2'].errors).toEqual([{ type: 'dependency_cycle', message: 'Dependency cycle detected', details: 'nodes 3, 2', extra_info: {} }]);
    const self = failed(v(chain('ImageInvert', { image: ['2', 0] })));
    expect(self.node_errors['2'].errors[0].type).toBe('dependency_cycle');
  });

  it("puts the output node's own errors in the top-level details, as ComfyUI does", () => {
    const r = failed(v({ '1': { class_type: 'LoadTensor', inputs: {} }, '9': { class_type: 'SaveTensor', inputs: {} } }));
    expect(r.error.details).toBe('Required input is missing: images');
    expect(r.node_errors['9'].class_type).toBe('SaveTensor');
  });

  it('validates only the output and its dependencies', () => {
    const p = { ...chain('ImageInvert', {}), '5': { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 999 } } };
    const r = v(p);
    expect(r.valid).toBe(true);
    if (r.valid) {
      expect(r.prompt.nodes.map((n) => n.id)).toEqual(['1', '2', '9']);
      expect(r.prompt.inputNode).toBe('1');
      expect(r.prompt.outputNode).toBe('9');
    }
  });

  it('refuses more nodes than maxNodes with a clear error', () => {
    const r = failed(validatePrompt(chain('ImageInvert', {}), { workspace, maxNodes: 2 }));
    expect(r.error).toMatchObject({ type: 'invalid_prompt', message: 'Prompt has too many nodes', details: '3 nodes; the limit is 2 (inference.maxPromptNodes)' });
  });

  it('refuses a graph that cannot run per frame: two outputs, or an output fed by two frame inputs', () => {
    const two = failed(
      validatePrompt(
        { ...chain('ImageInvert', {}), '8': { class_type: 'SaveTensor', inputs: { images: ['1', 0] } } },
        { workspace, normalize: false },
      ),
    );
    expect(two.error).toMatchObject({ type: 'invalid_prompt', extra_info: { code: 'not_streamable' } });
    expect(two.error.message).toMatch(/exactly one SaveTensor/);
    const primaryPlusTensor = failed(
      v({
        '1': { class_type: 'PrimaryInputLoadImage', inputs: {} },
        '4': { class_type: 'LoadTensor', inputs: {} },
        '2': { class_type: 'ImageBlend', inputs: { image1: ['1', 0], image2: ['4', 0], blend_factor: 0.5, blend_mode: 'screen' } },
        '9': { class_type: 'PreviewImage', inputs: { images: ['2', 0] } },
      }),
    );
    expect(primaryPlusTensor.error.message).toMatch(/exactly one LoadTensor input/);
  });

  it('answers bad JSON, non-object prompts and odd values without throwing', () => {
    expect(failed(v('{not json')).error).toMatchObject({ type: 'invalid_prompt', message: 'Prompt is not valid JSON' });
    for (const bad of [null, 42, 'null', [], { '1': 5 }, { '1': { class_type: 'LoadTensor', inputs: [] } }, { '1': { class_type: 7 } }]) {
      expect(failed(v(bad)).error.type).toBe('invalid_prompt');
    }
  });

  it('accepts a JSON string and ignores _meta', () => {
    const p = chain('ImageSharpen', { sharpen_radius: 2, sigma: 1, alpha: 0.5 });
    (p['2'] as Record<string, unknown>)._meta = { title: 'Sharpen it' };
    const r = v(JSON.stringify(p));
    expect(r.valid).toBe(true);
  });

  it('validates a list of prompts, naming the index of the failing one', () => {
    const ok = validatePrompts([chain('ImageInvert', {}), JSON.stringify(chain('ImageBlur', { blur_radius: 2, sigma: 1 }))], { workspace });
    expect(ok.valid).toBe(true);
    if (ok.valid) expect(ok.prompts).toHaveLength(2);
    const bad = validatePrompts([chain('ImageInvert', {}), chain('ImageBlur', { blur_radius: 2 })], { workspace });
    expect(bad.valid).toBe(false);
    if (bad.valid) return;
    expect(bad.error.message).toBe('Prompt 1: Prompt outputs failed validation');
    expect(bad.validation_errors).toEqual([expect.objectContaining({ prompt_index: 1, node_id: '2', input_name: 'sigma' })]);
    const many = validatePrompts(Array.from({ length: 3 }, () => chain('ImageInvert', {})), { workspace, maxPrompts: 2 });
    expect(many.valid === false && many.error.message).toBe('Too many prompts');
    expect(validatePrompts([], { workspace }).valid).toBe(false);
  });

  it('validates a 1,000-node chain', () => {
    const p: Record<string, unknown> = { '0': { class_type: 'LoadTensor', inputs: {} } };
    for (let i = 1; i < 999; i++) p[String(i)] = { class_type: 'ImageInvert', inputs: { image: [String(i - 1), 0] } };
    p['999'] = { class_type: 'SaveTensor', inputs: { images: ['998', 0] } };
    const r = validatePrompt(p, { workspace, maxNodes: 1000 });
    expect(r.valid).toBe(true);
    if (!r.valid) return;
    expect(r.prompt.nodes).toHaveLength(1000);
    expect(r.prompt.nodes.map((n) => n.id)).toEqual(Array.from({ length: 1000 }, (_, i) => String(i)));
    // A cycle closed at the far end of the chain is still found.
    (p['1'] as { inputs: Record<string, unknown> }).inputs.image = ['998', 0];
    const cyc = failed(validatePrompt(p, { workspace, maxNodes: 1000 }));
    expect(Object.keys(cyc.node_errors)).toHaveLength(998);
  });
});
