// TextRedact: finds text with PP-OCRv4's detector (workspace model ppocr_v4_det.onnx) and blurs or
// blacks out the pixels it covers. Three sessions per frame:
//   1. prep (built here): resize to PaddleOCR's DetResizeForTest size (longer side capped at
//      textDetLimitSide, each side rounded to a multiple of 32), RGB -> BGR (PaddleOCR reads
//      images with cv2), (x - mean) / std with mean [0.485,0.456,0.406], std [0.229,0.224,0.225]
//      applied in that BGR channel order, as PaddleOCR's NormalizeImage does;
//   2. the detector: probability map [1,1,H32,W32];
//   3. redact (built here): map resized back to the frame, > threshold, dilated by `padding`
//      (MaxPool), then image * (1 - mask) + replacement * mask, replacement = ComfyUI gaussian
//      blur of radius blur_radius, or black.
// Everything per pixel happens inside onnxruntime; no JS loops touch the frame.
import { existsSync } from 'node:fs';
import ort from 'onnxruntime-node';
import type { InferenceConfig } from '../config.ts';
import { GraphBuilder } from './onnx/builder.ts';
import { gaussianBlur } from './onnx/image.ts';
import { pyRound } from './onnx/resize.ts';
import { GraphError } from './ops/errors.ts';
import type { HostEnv, HostStep, Size } from './ops/types.ts';
import { REDACT_MODES } from './nodes.ts';
import { modelPath } from './workspace.ts';

export const TEXT_DET_MODEL = 'ppocr_v4_det.onnx';
export type RedactMode = (typeof REDACT_MODES)[number];

export interface RedactParams {
  threshold: number;
  padding: number;
  mode: RedactMode;
  blurRadius: number;
}

/** PaddleOCR DetResizeForTest (limit_type 'max'): the detector's input size for a frame. */
export function detInputSize(size: Size, limitSide: number): Size {
  const ratio = Math.max(size.width, size.height) > limitSide ? limitSide / Math.max(size.width, size.height) : 1;
  const r32 = (v: number) => Math.max(pyRound(Math.trunc(v * ratio) / 32) * 32, 32);
  return { width: r32(size.width), height: r32(size.height) };
}

function prepGraph(size: Size, det: Size): Uint8Array {
  const g = new GraphBuilder('text_redact_prep');
  const x = g.input('image', 'float32', [1, 3, size.height, size.width]);
  const same = det.width === size.width && det.height === size.height;
  const resized = same ? x : g.op1('Resize', [x, '', '', g.i64([1, 3, det.height, det.width])], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' });
  const bgr = g.op1('Gather', [resized, g.i64([2, 1, 0])], { axis: 1 });
  const centred = g.op1('Sub', [bgr, g.f32([0.485, 0.456, 0.406], [1, 3, 1, 1])]);
  const out = g.op1('Div', [centred, g.f32([0.229, 0.224, 0.225], [1, 3, 1, 1])], {}, 'det_in');
  g.output(out, 'float32', [1, 3, det.height, det.width]);
  return g.toBytes();
}

function redactGraph(size: Size, det: Size, p: RedactParams, sigma: number): Uint8Array {
  const g = new GraphBuilder('text_redact_mask');
  const x = g.input('image', 'float32', [1, 3, size.height, size.width]);
  const prob = g.input('prob', 'float32', [1, 1, det.height, det.width]);
  const same = det.width === size.width && det.height === size.height;
  const full = same ? prob : g.op1('Resize', [prob, '', '', g.i64([1, 1, size.height, size.width])], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' });
  let mask = g.op1('Cast', [g.op1('Greater', [full, g.scalar(p.threshold)])], { to: 1 });
  if (p.padding > 0) {
    // a square dilation is separable: a row max then a column max, O(2k) per pixel instead of O(k^2)
    const k = 2 * p.padding + 1;
    mask = g.op1('MaxPool', [mask], { kernel_shape: [1, k], pads: [0, p.padding, 0, p.padding], strides: [1, 1] });
    mask = g.op1('MaxPool', [mask], { kernel_shape: [k, 1], pads: [p.padding, 0, p.padding, 0], strides: [1, 1] });
  }
  const image = { name: x, width: size.width, height: size.height };
  const replacement = p.mode === 'black' ? g.scalar(0) : gaussianBlur(g, image, Math.min(p.blurRadius, Math.min(size.width, size.height) - 1), sigma).name;
  const delta = g.op1('Sub', [replacement, x]);
  const out = g.op1('Add', [x, g.op1('Mul', [delta, mask])], {}, 'redacted');
  g.output(out, 'float32', [1, 3, size.height, size.width]);
  g.output(mask, 'float32', [1, 1, size.height, size.width]);
  return g.toBytes();
}

export interface TextRedactor extends HostStep {
  /** The last frame's dilated text mask (1 = redacted), [1,1,H,W]; for tests and inspection. */
  lastMask(): ort.Tensor | undefined;
}

/** Builds the three sessions for frames of `size`. */
export async function createTextRedactor(
  size: Size,
  params: RedactParams,
  env: HostEnv,
  nodeId?: string,
): Promise<TextRedactor> {
  const file = modelPath(env.workspace, TEXT_DET_MODEL);
  if (!existsSync(file)) throw new GraphError('GRAPH_MISSING_MODEL', `${TEXT_DET_MODEL} is not in the workspace`, nodeId);
  const det = detInputSize(size, env.config.textDetLimitSide);
  const sessions: ort.InferenceSession[] = [];
  try {
    sessions.push(await ort.InferenceSession.create(prepGraph(size, det), env.sessionOptions));
    sessions.push(await ort.InferenceSession.create(file, env.sessionOptions));
    sessions.push(await ort.InferenceSession.create(redactGraph(size, det, params, env.config.textRedactSigma), env.sessionOptions));
  } catch (cause) {
    await Promise.all(sessions.map((s) => s.release()));
    throw new GraphError('GRAPH_MISSING_MODEL', `TextRedact sessions cannot be created`, nodeId, { cause });
  }
  const [prep, detector, redact] = sessions;
  let mask: ort.Tensor | undefined;
  return {
    size,
    async run({ image }) {
      const a = await prep.run({ image });
      const b = await detector.run({ [detector.inputNames[0]]: a[prep.outputNames[0]] });
      const c = await redact.run({ image, prob: b[detector.outputNames[0]] });
      mask = c[redact.outputNames[1]];
      return c[redact.outputNames[0]];
    },
    lastMask: () => mask,
    async release() {
      for (const s of sessions) await s.release();
    },
  };
}
