// Plain TypeScript reference implementations of ComfyUI's image nodes, written straight from
// ComfyUI / torch / Pillow semantics (per-pixel loops, full 2-D kernels, float64) and independent
// of the ONNX builders under test. Images are HWC float arrays with their size.
import type { ResolvedNode, ResolvedPrompt } from '../../src/inference/types.ts';

export interface Img {
  w: number;
  h: number;
  /** HWC, 3 channels, float 0..1 (or beyond, before clamping) */
  d: Float64Array;
}

export function fromRgb(rgb: Uint8Array, w: number, h: number): Img {
  return { w, h, d: Float64Array.from(rgb, (v) => v / 255) };
}

/** clamp(0..1) * 255, round half to even (torch.round), uint8. */
export function toRgb(img: Img): Uint8Array {
  return Uint8Array.from(img.d, (v) => {
    const x = Math.min(1, Math.max(0, v)) * 255;
    const f = Math.floor(x);
    const r = x - f;
    return r > 0.5 ? f + 1 : r < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  });
}

export const at = (img: Img, x: number, y: number, c: number) => img.d[(y * img.w + x) * 3 + c];
const map = (img: Img, f: (v: number, i: number) => number): Img => ({ w: img.w, h: img.h, d: img.d.map(f) });
const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** A deterministic pseudo-random RGB frame with smooth regions and edges. */
export function randomFrame(w: number, h: number, seed = 1): Uint8Array {
  let s = seed >>> 0 || 1;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const out = new Uint8Array(w * h * 3);
  const blobs = Array.from({ length: 6 }, () => [rnd() * w, rnd() * h, 5 + rnd() * w * 0.4, rnd() * 255, rnd() * 255, rnd() * 255]);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let v = ((x * (c + 1) * 3 + y * 2) % 256) * 0.3;
        for (const b of blobs) if ((x - b[0]) ** 2 + (y - b[1]) ** 2 < b[2] ** 2) v = b[3 + c] * 0.8 + v * 0.2;
        out[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v + (rnd() - 0.5) * 40)));
      }
    }
  return out;
}

export function invert(img: Img): Img {
  return map(img, (v) => 1 - v);
}

/** torch F.pad 'reflect' index. */
const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);

/** ComfyUI gaussian_kernel(size, sigma): 2-D, over linspace(-1, 1). */
export function gaussianKernel2d(size: number, sigma: number): Float64Array {
  const k = new Float64Array(size * size);
  let sum = 0;
  for (let i = 0; i < size; i++)
    for (let j = 0; j < size; j++) {
      const x = -1 + (2 * i) / (size - 1);
      const y = -1 + (2 * j) / (size - 1);
      const d = Math.sqrt(x * x + y * y);
      k[i * size + j] = Math.exp(-(d * d) / (2 * sigma * sigma));
      sum += k[i * size + j];
    }
  return k.map((v) => v / sum);
}

function conv2dReflect(img: Img, k: Float64Array, r: number): Img {
  const size = 2 * r + 1;
  const out = new Float64Array(img.d.length);
  for (let y = 0; y < img.h; y++)
    for (let x = 0; x < img.w; x++)
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let i = 0; i < size; i++)
          for (let j = 0; j < size; j++) acc += k[i * size + j] * at(img, reflect(x + j - r, img.w), reflect(y + i - r, img.h), c);
        out[(y * img.w + x) * 3 + c] = acc;
      }
  return { w: img.w, h: img.h, d: out };
}

export function blur(img: Img, radius: number, sigma: number): Img {
  return conv2dReflect(img, gaussianKernel2d(radius * 2 + 1, sigma), radius);
}

export function sharpen(img: Img, radius: number, sigma: number, alpha: number): Img {
  const size = radius * 2 + 1;
  const k = gaussianKernel2d(size, sigma).map((v) => v * -(alpha * 10));
  const sum = k.reduce((a, b) => a + b, 0);
  const c = radius * size + radius;
  k[c] = k[c] - sum + 1;
  return map(conv2dReflect(img, k, radius), clamp01);
}

export function blendMode(a: number, b: number, mode: string): number {
  const g = (x: number) => (x <= 0.25 ? ((16 * x - 12) * x + 4) * x : Math.sqrt(x));
  switch (mode) {
    case 'normal':
      return b;
    case 'multiply':
      return a * b;
    case 'screen':
      return 1 - (1 - a) * (1 - b);
    case 'overlay':
      return a <= 0.5 ? 2 * a * b : 1 - 2 * (1 - a) * (1 - b);
    case 'soft_light':
      return b <= 0.5 ? a - (1 - 2 * b) * a * (1 - a) : a + (2 * b - 1) * (g(a) - a);
    case 'difference':
      return a - b;
  }
  throw new Error(mode);
}

export function blend(a: Img, b: Img, factor: number, mode: string): Img {
  if (a.w !== b.w || a.h !== b.h) b = upscale(b, a.w, a.h, 'bicubic', 'center');
  return map(a, (v, i) => clamp01(v * (1 - factor) + blendMode(v, b.d[i], mode) * factor));
}

function pyRound(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

export function cropImg(img: Img, x: number, y: number, w: number, h: number): Img {
  const d = new Float64Array(w * h * 3);
  for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) for (let c = 0; c < 3; c++) d[(j * w + i) * 3 + c] = at(img, x + i, y + j, c);
  return { w, h, d };
}

/** Applies a per-axis weight function: out(x) = sum_k W(x,k) in(k), first along W then along H. */
function separable(img: Img, ow: number, oh: number, wx: (o: number) => Array<[number, number]>, wy: (o: number) => Array<[number, number]>): Img {
  const tmp = new Float64Array(img.h * ow * 3);
  for (let y = 0; y < img.h; y++)
    for (let x = 0; x < ow; x++) for (const [k, w] of wx(x)) for (let c = 0; c < 3; c++) tmp[(y * ow + x) * 3 + c] += w * at(img, k, y, c);
  const out = new Float64Array(oh * ow * 3);
  for (let y = 0; y < oh; y++)
    for (const [k, w] of wy(y)) for (let x = 0; x < ow; x++) for (let c = 0; c < 3; c++) out[(y * ow + x) * 3 + c] += w * tmp[(k * ow + x) * 3 + c];
  return { w: ow, h: oh, d: out };
}

/** torch.nn.functional.interpolate(..., mode) for nearest-exact / bilinear / bicubic / area (align_corners False). */
export function interpolate(img: Img, ow: number, oh: number, mode: string): Img {
  const axis = (inN: number, outN: number) => {
    const scale = inN / outN;
    return (o: number): Array<[number, number]> => {
      if (mode === 'nearest-exact') return [[Math.min(Math.floor((o + 0.5) * scale), inN - 1), 1]];
      if (mode === 'area') {
        const s = Math.floor((o * inN) / outN);
        const e = Math.ceil(((o + 1) * inN) / outN);
        return Array.from({ length: e - s }, (_, k) => [s + k, 1 / (e - s)]);
      }
      const cl = (i: number) => Math.min(inN - 1, Math.max(0, i));
      let src = scale * (o + 0.5) - 0.5;
      if (mode === 'bilinear') {
        if (src < 0) src = 0;
        const i0 = Math.floor(src);
        const t = src - i0;
        return [[cl(i0), 1 - t], [cl(i0 + 1), t]];
      }
      // bicubic, A = -0.75, out-of-range taps read the edge pixel
      const A = -0.75;
      const i0 = Math.floor(src);
      const t = src - i0;
      const c1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
      const c2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
      const ws = [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)];
      return ws.map((w, k) => [cl(i0 - 1 + k), w]);
    };
  };
  return separable(img, ow, oh, axis(img.w, ow), axis(img.h, oh));
}

/** Pillow Image.resize(LANCZOS) on the uint8 truncation of the image, / 255 (ComfyUI's lanczos). */
export function lanczosPil(img: Img, ow: number, oh: number): Img {
  const sinc = (x: number) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
  const axis = (inN: number, outN: number) => (o: number): Array<[number, number]> => {
    const scale = inN / outN;
    const fs = Math.max(1, scale);
    const support = 3 * fs;
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inN, Math.trunc(center + support + 0.5));
    const ws: Array<[number, number]> = [];
    for (let k = lo; k < hi; k++) {
      const t = (k - center + 0.5) / fs;
      ws.push([k, Math.abs(t) < 3 || t === -3 ? sinc(t) * sinc(t / 3) : 0]);
    }
    const sum = ws.reduce((a, [, w]) => a + w, 0);
    return ws.map(([k, w]) => [k, w / sum]);
  };
  const q = (v: number) => Math.min(255, Math.max(0, Math.floor(v * 255 + 0.5))) / 255;
  const u8 = map(img, (v) => Math.trunc(Math.min(1, Math.max(0, v)) * 255) / 255);
  const identity = (o: number): Array<[number, number]> => [[o, 1]];
  let x = u8;
  if (ow !== img.w) x = map(separable(x, ow, x.h, axis(img.w, ow), identity), q);
  if (oh !== img.h) x = map(separable(x, x.w, oh, identity, axis(img.h, oh)), q);
  return x;
}

/** comfy.utils.common_upscale. */
export function upscale(img: Img, width: number, height: number, method: string, crop: string): Img {
  let s = img;
  if (crop === 'center') {
    const oa = img.w / img.h;
    const na = width / height;
    let x = 0;
    let y = 0;
    if (oa > na) x = pyRound((img.w - img.w * (na / oa)) / 2);
    else if (oa < na) y = pyRound((img.h - img.h * (oa / na)) / 2);
    s = cropImg(img, x, y, img.w - 2 * x, img.h - 2 * y);
  }
  return method === 'lanczos' ? lanczosPil(s, width, height) : interpolate(s, width, height, method);
}

/** ImageScale's size rule (nodes.py). */
export function scaleSize(w: number, h: number, width: number, height: number): [number, number] | null {
  if (width === 0 && height === 0) return null;
  if (width === 0) width = Math.max(1, pyRound((w * height) / h));
  else if (height === 0) height = Math.max(1, pyRound((h * width) / w));
  return [width, height];
}

export function scaleBySize(w: number, h: number, s: number): [number, number] {
  return [pyRound(w * s), pyRound(h * s)];
}

/** Largest |a - b| over two byte arrays (and the count of positions above `tol`). */
export function diffStats(a: Uint8Array, b: Uint8Array, tol = 0): { max: number; over: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  let over = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > max) max = d;
    if (d > tol) over++;
  }
  return { max, over };
}

const link = (node: string) => ({ node, slot: 0 });

/** LoadTensor -> one node (its `image` or `image1` fed by the frame) -> SaveTensor. */
export function singleNodePrompt(id: string, classType: string, inputs: Record<string, unknown>, imageInputs = ['image']): ResolvedPrompt {
  const ins: Record<string, unknown> = { ...inputs };
  for (const n of imageInputs) ins[n] = link('1');
  return {
    id,
    inputNode: '1',
    outputNode: '3',
    nodes: [
      { id: '1', classType: 'LoadTensor', inputs: {} },
      { id: '2', classType, inputs: ins } as ResolvedNode,
      { id: '3', classType: 'SaveTensor', inputs: { images: link('2') } },
    ],
  };
}

export { link };
