// ComfyUI's comfy.utils.common_upscale as an ONNX subgraph: optional center crop, then
// torch.nn.functional.interpolate(mode=...) for nearest-exact / bilinear / area / bicubic, and
// Pillow's LANCZOS for lanczos (ComfyUI hands that one to PIL on a uint8 copy of the image).
import type { GraphBuilder } from './builder.ts';
import { crop, resampleAxis, type ImageValue } from './image.ts';

export const UPSCALE_METHODS = ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos'] as const;
export type UpscaleMethod = (typeof UPSCALE_METHODS)[number];

/** Python's round(): halves go to the even neighbour. */
export function pyRound(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The crop window common_upscale takes before resizing when crop == 'center'. */
export function centerCropBox(oldW: number, oldH: number, width: number, height: number): { x: number; y: number; w: number; h: number } {
  const oldAspect = oldW / oldH;
  const newAspect = width / height;
  let x = 0;
  let y = 0;
  if (oldAspect > newAspect) x = pyRound((oldW - oldW * (newAspect / oldAspect)) / 2);
  else if (oldAspect < newAspect) y = pyRound((oldH - oldH * (oldAspect / newAspect)) / 2);
  return { x, y, w: oldW - 2 * x, h: oldH - 2 * y };
}

interface Taps {
  idx: Int32Array;
  w: Float32Array | null;
  taps: number;
}

/** torch 'nearest-exact': src = floor((dst + 0.5) * in / out), clamped. */
export function nearestExactTaps(inSize: number, outSize: number): Taps {
  const scale = Math.fround(inSize / outSize);
  const idx = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) idx[i] = Math.min(Math.floor(Math.fround((i + 0.5) * scale)), inSize - 1);
  return { idx, w: null, taps: 1 };
}

/** torch 'area' = adaptive_avg_pool2d: output i averages input [floor(i*in/out), ceil((i+1)*in/out)). */
export function areaTaps(inSize: number, outSize: number): Taps {
  const ranges: Array<[number, number]> = [];
  let taps = 1;
  for (let i = 0; i < outSize; i++) {
    const s = Math.floor((i * inSize) / outSize);
    const e = Math.ceil(((i + 1) * inSize) / outSize);
    ranges.push([s, e]);
    taps = Math.max(taps, e - s);
  }
  return fill(ranges.map(([s, e]) => Array.from({ length: e - s }, (_, k) => [s + k, 1 / (e - s)] as [number, number])), taps);
}

/** torch bicubic (A = -0.75, align_corners False): 4 taps around (dst + 0.5) * in/out - 0.5,
 * out-of-range taps read the edge pixel. */
export function bicubicTaps(inSize: number, outSize: number): Taps {
  const A = -0.75;
  const c1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const c2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  const scale = inSize / outSize;
  const rows: Array<Array<[number, number]>> = [];
  for (let o = 0; o < outSize; o++) {
    const src = scale * (o + 0.5) - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    const ws = [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)];
    rows.push(ws.map((w, k) => [Math.min(inSize - 1, Math.max(0, i0 - 1 + k)), w] as [number, number]));
  }
  return fill(rows, 4);
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

/** Pillow's precompute_coeffs for LANCZOS (support 3, widened by the scale when shrinking). */
export function lanczosTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 3 * filterscale;
  const rows: Array<Array<[number, number]>> = [];
  let taps = 1;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const row: Array<[number, number]> = [];
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = (x + xmin - center + 0.5) * ss;
      const w = t >= -3 && t < 3 ? sinc(t) * sinc(t / 3) : 0;
      row.push([x + xmin, w]);
      ww += w;
    }
    if (ww !== 0) for (const p of row) p[1] /= ww;
    rows.push(row);
    taps = Math.max(taps, row.length);
  }
  return fill(rows, taps);
}

function fill(rows: Array<Array<[number, number]>>, taps: number): Taps {
  const idx = new Int32Array(rows.length * taps);
  const w = new Float32Array(rows.length * taps);
  rows.forEach((row, i) => row.forEach(([j, v], t) => ((idx[i * taps + t] = j), (w[i * taps + t] = v))));
  return { idx, w, taps };
}

function axisResample(g: GraphBuilder, x: string, axis: 2 | 3, other: number, outSize: number, t: Taps): string {
  return resampleAxis(g, x, axis, other, t.idx, t.w, outSize, t.taps);
}

/** x -> clip(round_half_up(x * 255)) / 255: Pillow's 8-bit store after each resampling pass. */
function to8bit(g: GraphBuilder, x: string, floor = false): string {
  const s = g.op1('Mul', [x, g.scalar(255)]);
  const r = floor ? g.op1('Floor', [s]) : g.op1('Floor', [g.op1('Add', [s, g.scalar(0.5)])]);
  const c = g.op1('Clip', [r, g.scalar(0), g.scalar(255)]);
  return g.op1('Div', [c, g.scalar(255)]);
}

/** common_upscale(image, width, height, method, crop) on a float NCHW image. */
export function commonUpscale(g: GraphBuilder, img: ImageValue, width: number, height: number, method: UpscaleMethod, cropMode: 'disabled' | 'center'): ImageValue {
  let src = img;
  if (cropMode === 'center') {
    const b = centerCropBox(img.width, img.height, width, height);
    src = crop(g, img, b.x, b.y, b.w, b.h);
  }
  if (src.width === width && src.height === height && method !== 'lanczos') return src;
  let x = src.name;
  switch (method) {
    case 'nearest-exact': {
      // A pure selection of pixels: exact on bytes too (HWC: width is axis 1, height axis 0).
      let b = src.bytes?.name;
      if (src.width !== width) {
        const idx = g.i64(nearestExactTaps(src.width, width).idx);
        x = g.op1('Gather', [x, idx], { axis: 3 });
        if (b) b = g.op1('Gather', [b, idx], { axis: 1 });
      }
      if (src.height !== height) {
        const idx = g.i64(nearestExactTaps(src.height, height).idx);
        x = g.op1('Gather', [x, idx], { axis: 2 });
        if (b) b = g.op1('Gather', [b, idx], { axis: 0 });
      }
      return { name: x, width, height, bytes: b && src.bytes ? { name: b, lut: src.bytes.lut } : undefined };
    }
    case 'area':
      if (src.width !== width) x = axisResample(g, x, 3, src.height, width, areaTaps(src.width, width));
      if (src.height !== height) x = axisResample(g, x, 2, width, height, areaTaps(src.height, height));
      break;
    case 'bilinear':
      // onnxruntime's linear Resize with half_pixel coordinates is torch's align_corners=False.
      x = g.op1('Resize', [x, '', '', g.i64([1, 3, height, width])], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' });
      break;
    case 'bicubic':
      // Same numbers as Resize(cubic, A=-0.75, half_pixel), but onnxruntime's cubic kernel is
      // several times slower than four gathers and a weighted sum per axis.
      if (src.width !== width) x = axisResample(g, x, 3, src.height, width, bicubicTaps(src.width, width));
      if (src.height !== height) x = axisResample(g, x, 2, width, height, bicubicTaps(src.height, height));
      break;
    case 'lanczos': {
      // ComfyUI: np.clip(255 * x).astype(uint8) (truncation), PIL resize (horizontal pass, then
      // vertical, each stored as 8-bit), / 255. Coefficients are float here, fixed-point in Pillow:
      // against Pillow 12.3 the bytes agree except for +-1 on under 0.1% of them (see tests).
      x = to8bit(g, x, true);
      if (src.width !== width) x = to8bit(g, axisResample(g, x, 3, src.height, width, lanczosTaps(src.width, width)));
      if (src.height !== height) x = to8bit(g, axisResample(g, x, 2, width, height, lanczosTaps(src.height, height)));
      break;
    }
  }
  return { name: x, width, height };
}
