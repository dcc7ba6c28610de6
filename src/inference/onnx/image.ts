// Image subgraphs shared by the op builders. Inside a compiled graph an IMAGE is a float32 NCHW
// tensor [1, 3, H, W] in 0..1 (ComfyUI's [B,H,W,C] permuted once at the edges): convolutions and
// resampling want channels first, and keeping one layout avoids a transpose per node.
import type { GraphBuilder } from './builder.ts';

export interface ImageValue {
  /** Tensor name inside the graph being built. */
  name: string;
  width: number;
  height: number;
}

/** uint8 HWC RGB frame -> float NCHW 0..1 (torch's `frame.float() / 255`, so division, not a multiply). */
export function frameToImage(g: GraphBuilder, frame: string, width: number, height: number): ImageValue {
  const chw = g.op1('Transpose', [frame], { perm: [2, 0, 1] });
  const f = g.op1('Cast', [chw], { to: 1 });
  const scaled = g.op1('Div', [f, g.scalar(255)]);
  const name = g.op1('Reshape', [scaled, g.i64([1, 3, height, width])], {}, 'image');
  return { name, width, height };
}

/** float NCHW -> uint8 HWC: clamp to 0..1, scale, round half to even, cast. */
export function imageToFrame(g: GraphBuilder, img: ImageValue): string {
  const clamped = g.op1('Clip', [img.name, g.scalar(0), g.scalar(1)]);
  const scaled = g.op1('Mul', [clamped, g.scalar(255)]);
  const rounded = g.op1('Round', [scaled]);
  const u8 = g.op1('Cast', [rounded], { to: 2 });
  const chw = g.op1('Reshape', [u8, g.i64([3, img.height, img.width])]);
  return g.op1('Transpose', [chw], { perm: [1, 2, 0] }, 'frame_out');
}

/** ComfyUI's gaussian_kernel, one axis of it: exp(-x^2 / 2 sigma^2) over linspace(-1, 1, size), normalised.
 * The 2-D kernel is the outer product of this with itself (its sum factorises too), so blur is separable. */
export function gaussian1d(size: number, sigma: number): Float32Array {
  const k = new Float32Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = size === 1 ? -1 : -1 + (2 * i) / (size - 1);
    k[i] = Math.exp(-(x * x) / (2 * sigma * sigma));
    sum += k[i];
  }
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

/** Reflect-pads H and W by `r` (torch F.pad mode 'reflect'). */
export function reflectPad(g: GraphBuilder, x: string, r: number): string {
  return g.op1('Pad', [x, g.i64([0, 0, r, r, 0, 0, r, r])], { mode: 'reflect' });
}

/** Gaussian blur exactly as ComfyUI's ImageBlur: reflect pad by radius, (2r+1)^2 kernel, same size out. */
export function gaussianBlur(g: GraphBuilder, img: ImageValue, radius: number, sigma: number): ImageValue {
  if (radius <= 0) return img;
  const size = radius * 2 + 1;
  const k = gaussian1d(size, sigma);
  const wh = new Float32Array(3 * size);
  for (let c = 0; c < 3; c++) wh.set(k, c * size);
  const padded = reflectPad(g, img.name, radius);
  const horiz = g.op1('Conv', [padded, g.f32(wh, [3, 1, 1, size])], { group: 3 });
  const name = g.op1('Conv', [horiz, g.f32(wh, [3, 1, size, 1])], { group: 3 }, 'blur');
  return { name, width: img.width, height: img.height };
}

/**
 * Resamples one spatial axis with a fixed tap table: out[i] = sum_t w[i][t] * in[idx[i][t]]. Any
 * separable filter with precomputed coefficients (area averaging, lanczos, nearest) fits it; the
 * Gather + Mul + ReduceSum form costs O(out * taps), not a dense matmul's O(out * in).
 */
export function resampleAxis(
  g: GraphBuilder,
  x: string,
  axis: 2 | 3,
  other: number,
  idx: Int32Array,
  w: Float32Array | null,
  outSize: number,
  taps: number,
): string {
  if (taps === 1 && w === null) return g.op1('Gather', [x, g.i64(idx, [idx.length])], { axis });
  if (taps <= 8) {
    // Few taps: one Gather per tap and a weighted sum, all contiguous elementwise work; faster
    // in onnxruntime than a ReduceSum over a short innermost axis.
    let acc = '';
    for (let t = 0; t < taps; t++) {
      const ti = new Int32Array(outSize);
      const tw = new Float32Array(outSize);
      for (let o = 0; o < outSize; o++) {
        ti[o] = idx[o * taps + t];
        tw[o] = w![o * taps + t];
      }
      const gt = g.op1('Gather', [x, g.i64(ti, [outSize])], { axis });
      const wt = g.op1('Mul', [gt, g.f32(tw, axis === 3 ? [outSize] : [outSize, 1])]);
      acc = acc ? g.op1('Add', [acc, wt]) : wt;
    }
    return acc;
  }
  const gathered = g.op1('Gather', [x, g.i64(idx, [idx.length])], { axis });
  if (axis === 3) {
    const r = g.op1('Reshape', [gathered, g.i64([1, 3, other, outSize, taps])]);
    const m = g.op1('Mul', [r, g.f32(w!, [outSize, taps])]);
    return g.op1('ReduceSum', [m, g.i64([4])], { keepdims: 0 });
  }
  const r = g.op1('Reshape', [gathered, g.i64([1, 3, outSize, taps, other])]);
  const m = g.op1('Mul', [r, g.f32(w!, [outSize, taps, 1])]);
  return g.op1('ReduceSum', [m, g.i64([3])], { keepdims: 0 });
}

/** Crops NCHW to rows [y, y+h) and columns [x, x+w). */
export function crop(g: GraphBuilder, img: ImageValue, x: number, y: number, w: number, h: number): ImageValue {
  if (x === 0 && y === 0 && w === img.width && h === img.height) return img;
  const name = g.op1('Slice', [img.name, g.i64([y, x]), g.i64([y + h, x + w]), g.i64([2, 3])], {}, 'crop');
  return { name, width: w, height: h };
}
