// Image subgraphs shared by the op builders. Inside a compiled graph an IMAGE is a float32 NCHW
// tensor [1, 3, H, W] in 0..1 (ComfyUI's [B,H,W,C] permuted once at the edges): convolutions and
// resampling want channels first, and keeping one layout avoids a transpose per node.
//
// The byte domain: an IMAGE every element of which is a function of one byte (the frame itself,
// its inversion, a nearest-neighbour resize or crop of those, a palette's colours) may also be
// carried as those bytes, uint8 HWC [H, W, 3] like the frame, with a table `lut` giving the exact
// float32 the float path holds for each byte value. Ops that are exact on bytes (ImageInvert is
// 255 - x, selections move bytes) produce bytes from bytes; SaveTensor stores the bytes as they
// are when storing lut[b] gives b back for every b (checked for all 256 values at compile time), so
// such a prompt never converts to float32 at all. Whenever a float op needs the IMAGE, it reads the
// float path, built beside the bytes; the builder keeps only the representation someone read.
import { CAST_TO, type GraphBuilder } from './builder.ts';

/** An IMAGE as uint8 HWC bytes: the float path's value of an element with byte b is lut[b]. */
export interface ImageBytes {
  /** uint8 [H, W, 3] tensor name inside the graph being built. */
  name: string;
  lut: Float32Array;
}

export interface ImageValue {
  /** float32 NCHW tensor name inside the graph being built. */
  name: string;
  width: number;
  height: number;
  /** The same IMAGE as bytes, when an exact byte form exists (see above). */
  bytes?: ImageBytes;
}

/** The frame's table: torch's `frame.float() / 255` in float32 (what frameToImage computes). */
export const FRAME_LUT: Float32Array = Float32Array.from({ length: 256 }, (_, b) => b / 255);

/** What SaveTensor stores for float v (imageToFrame's arithmetic in float32), or -1 for NaN. */
export function storedByte(v: number): number {
  if (Number.isNaN(v)) return -1;
  const s = Math.fround((v < 0 ? 0 : v > 1 ? 1 : v) * 255);
  const f = Math.floor(s);
  const d = s - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** Whether storing lut[b] gives b back for every byte b (then the bytes are the output frame). */
export function storesAsIs(lut: Float32Array): boolean {
  for (let b = 0; b < 256; b++) if (storedByte(lut[b]) !== b) return false;
  return true;
}

export function sameLut(a: Float32Array, b: Float32Array): boolean {
  if (a === b) return true;
  for (let i = 0; i < 256; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** Whether every value of the table lies in 0..1 (so clamping it changes nothing). */
export function lutInUnitRange(lut: Float32Array): boolean {
  for (let b = 0; b < 256; b++) if (!(lut[b] >= 0 && lut[b] <= 1)) return false;
  return true;
}

/** uint8 HWC RGB frame -> float NCHW 0..1 (torch's `frame.float() / 255`, so division, not a
 *  multiply). `bytes` false leaves out the byte form (the all-float32 path). */
export function frameToImage(g: GraphBuilder, frame: string, width: number, height: number, bytes = true): ImageValue {
  const img = bytesToImage(g, frame, FRAME_LUT, width, height);
  return bytes ? img : { name: img.name, width, height };
}

/** uint8 HWC bytes with their table -> the IMAGE (float path and bytes). The frame's table is the
 *  frame conversion; any other table is looked up (Gather), which gives its floats exactly. */
export function bytesToImage(g: GraphBuilder, bytes: string, lut: Float32Array, width: number, height: number): ImageValue {
  const chw = g.op1('Transpose', [bytes], { perm: [2, 0, 1] });
  let f: string;
  if (sameLut(lut, FRAME_LUT)) {
    f = g.op1('Div', [g.op1('Cast', [chw], { to: CAST_TO.float32 }), g.scalar(255)]);
  } else {
    f = g.op1('Gather', [g.f32(lut, [256]), g.op1('Cast', [chw], { to: CAST_TO.int32 })], { axis: 0 });
  }
  const name = g.op1('Reshape', [f, g.i64([1, 3, height, width])], {}, 'image');
  return { name, width, height, bytes: { name: bytes, lut } };
}

/** float NCHW -> uint8 HWC: clamp to 0..1, scale, round half to even, cast. An IMAGE whose bytes
 *  store as they are is its bytes. */
export function imageToFrame(g: GraphBuilder, img: ImageValue): string {
  if (img.bytes && storesAsIs(img.bytes.lut)) return img.bytes.name;
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

/** Crops NCHW to rows [y, y+h) and columns [x, x+w) (the bytes too: a selection is exact on them). */
export function crop(g: GraphBuilder, img: ImageValue, x: number, y: number, w: number, h: number): ImageValue {
  if (x === 0 && y === 0 && w === img.width && h === img.height) return img;
  const starts = g.i64([y, x]);
  const ends = g.i64([y + h, x + w]);
  const name = g.op1('Slice', [img.name, starts, ends, g.i64([2, 3])], {}, 'crop');
  const bytes = img.bytes && { name: g.op1('Slice', [img.bytes.name, starts, ends, g.i64([0, 1])], {}, 'crop_u8'), lut: img.bytes.lut };
  return { name, width: w, height: h, bytes };
}

/** Maps a table through an elementwise float32 function of the float path (`from` gives, for an
 *  output byte, the input byte it came from). */
export function mapLut(lut: Float32Array, from: (b: number) => number, f: (v: number) => number): Float32Array {
  return Float32Array.from({ length: 256 }, (_, b) => f(lut[from(b)]));
}
