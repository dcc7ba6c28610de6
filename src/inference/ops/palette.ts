// Colour quantisation as ComfyUI's ImageQuantize gets it from Pillow: a median-cut palette of the
// frame (`im.quantize(colors)`), then a second mapping of every pixel onto that palette
// (`im.quantize(palette=...)`, Pillow issue 5836) with no dither, Floyd-Steinberg or Bayer.
// The palette depends on the frame's own colours, so this runs on the host, not in a fixed graph.
//
// Mapping follows Pillow's Convert.c/Palette.c: every pixel takes the entry nearest (squared
// distance, first entry on ties) to the corner of its 4x4x4 colour cell, (r&~3, g&~3, b&~3), as
// Pillow's 64^3 cache does — even a pixel whose exact colour is in the palette (Pillow's main
// branch adds an exact-colour lookup first; released Pillow 12.3 does not, and this matches 12.3).
// Checked against Pillow 12.3 (ComfyUI's procedure run in Python on the same frames): identical
// palettes and identical output for none / floyd-steinberg / bayer at 2..256 colours on the test
// frames, bar colours beyond Pillow's 65536-colour hash limit (see medianCutPalette).

/** Quantised palette: `size` entries, RGB bytes. */
export interface Palette {
  rgb: Uint8Array;
  size: number;
}

/** Most distinct colours the median cut works on (Pillow's MAX_HASH_ENTRIES); beyond it colours
 * lose low bits, one more each time, until they fit. */
const MAX_COLOURS = 65536;

/**
 * Median-cut palette of an RGB24 image with at most `colors` entries, after Pillow's Quant.c:
 * repeatedly split the box holding the most pixels (boxes of one colour are final) on its
 * widest axis weighted by luminance (77, 150, 29), at the pixel median, keeping equal values on
 * one side; entries are the rounded mean of the pixels in each box, in tree order (higher half
 * first). Pillow's hash quirks (colliding colours counted as one) are not reproduced.
 */
export function medianCutPalette(rgb: Uint8Array, colors: number): Palette {
  const n = rgb.length / 3;
  let scale = 0;
  let keys: Uint32Array;
  let uniq: Uint32Array;
  let counts: Uint32Array;
  for (;;) {
    keys = new Uint32Array(n);
    for (let i = 0, j = 0; i < n; i++, j += 3) keys[i] = ((rgb[j] >> scale) << 16) | ((rgb[j + 1] >> scale) << 8) | (rgb[j + 2] >> scale);
    const sorted = keys.slice().sort();
    let distinct = 0;
    for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) distinct++;
    if (distinct <= MAX_COLOURS || scale >= 7) {
      uniq = new Uint32Array(distinct);
      counts = new Uint32Array(distinct);
      for (let i = 0, k = -1; i < n; i++) {
        if (i === 0 || sorted[i] !== sorted[i - 1]) uniq[++k] = sorted[i];
        counts[k]++;
      }
      break;
    }
    scale++;
  }
  const ch = (k: number, c: number) => (uniq[k] >> (16 - 8 * c)) & 255;
  interface Box {
    members: number[];
    pixels: number;
  }
  const range = (b: Box, c: number) => {
    let lo = 255;
    let hi = 0;
    for (const k of b.members) {
      const v = ch(k, c);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return hi - lo;
  };
  const volume = (b: Box) => (range(b, 0) + 1) * (range(b, 1) + 1) * (range(b, 2) + 1);
  // Leaves in tree order (the palette order); candidates to split come from a max-heap on pixel
  // count that is Pillow's QuantHeap.c step for step, so ties between equal counts resolve alike.
  const leaves: Box[] = [{ members: Array.from(uniq.keys()), pixels: n }];
  const heap: Box[] = [leaves[0], leaves[0]]; // 1-based; slot 0 unused
  let count = 1;
  const push = (b: Box) => {
    let k = ++count;
    while (k !== 1 && b.pixels - heap[k >> 1].pixels > 0) {
      heap[k] = heap[k >> 1];
      k >>= 1;
    }
    heap[k] = b;
  };
  const pop = (): Box | undefined => {
    if (!count) return undefined;
    const top = heap[1];
    const v = heap[count--];
    let k = 1;
    for (let l: number; k * 2 <= count; k = l) {
      l = k * 2;
      if (l < count && heap[l].pixels - heap[l + 1].pixels < 0) l++;
      if (v.pixels - heap[l].pixels > 0) break;
      heap[k] = heap[l];
    }
    heap[k] = v;
    return top;
  };
  for (let made = 1; made < colors; made++) {
    let pick: Box | undefined;
    do pick = pop();
    while (pick && volume(pick) === 1); // one colour: Pillow drops it from the heap
    if (!pick) break;
    const weights = [77, 150, 29];
    let axis = 0;
    let best = range(pick, 0) * weights[0];
    for (let c = 1; c < 3; c++) if (best < range(pick, c) * weights[c]) (best = range(pick, c) * weights[c]), (axis = c);
    // descending by value on the axis (counting sort), as Pillow's lists are kept
    const byValue: number[][] = Array.from({ length: 256 }, () => []);
    for (const k of pick.members) byValue[255 - ch(k, axis)].push(k);
    const order = byValue.flat();
    let left = 0;
    let i = 0;
    while (i < order.length) {
      left += counts[order[i++]];
      if (left * 2 > pick.pixels) break;
    }
    const splitVal = ch(order[i - 1], axis);
    while (i < order.length && ch(order[i], axis) === splitVal) left += counts[order[i++]];
    if (i === order.length) {
      const tailVal = ch(order[order.length - 1], axis);
      while (i > 0 && ch(order[i - 1], axis) === tailVal) left -= counts[order[--i]];
    }
    const l: Box = { members: order.slice(0, i), pixels: left };
    const r: Box = { members: order.slice(i), pixels: pick.pixels - left };
    leaves.splice(leaves.indexOf(pick), 1, l, r);
    push(l);
    push(r);
  }
  // palette = mean of the real pixels whose (scaled) colour fell in each box
  const boxOf = new Map<number, number>();
  let box = 0;
  for (const b of leaves) {
    if (!b.members.length) continue;
    for (const k of b.members) boxOf.set(uniq[k], box);
    box++;
  }
  const sum = new Float64Array(box * 3);
  const cnt = new Float64Array(box);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    const b = boxOf.get(keys[i])!;
    cnt[b]++;
    sum[b * 3] += rgb[j];
    sum[b * 3 + 1] += rgb[j + 1];
    sum[b * 3 + 2] += rgb[j + 2];
  }
  const out = new Uint8Array(box * 3);
  for (let b = 0; b < box; b++) for (let c = 0; c < 3; c++) out[b * 3 + c] = Math.trunc(0.5 + sum[b * 3 + c] / cnt[b]);
  return { rgb: out, size: box };
}

/** Pillow's palette lookup: nearest entry to the 4-aligned corner of the colour's cell, cached per cell. */
export class PaletteMapper {
  private readonly cache = new Int16Array(64 * 64 * 64).fill(-1);
  constructor(readonly palette: Palette) {}

  index(r: number, g: number, b: number): number {
    const cell = ((r >> 2) << 12) | ((g >> 2) << 6) | (b >> 2);
    let k = this.cache[cell];
    if (k >= 0) return k;
    const r0 = r & 0xfc;
    const g0 = g & 0xfc;
    const b0 = b & 0xfc;
    const p = this.palette.rgb;
    let best = Infinity;
    k = 0;
    for (let i = 0; i < this.palette.size; i++) {
      const dr = r0 - p[i * 3];
      const dg = g0 - p[i * 3 + 1];
      const db = b0 - p[i * 3 + 2];
      const d = dr * dr + dg * dg + db * db;
      if (d < best) {
        best = d;
        k = i;
      }
    }
    this.cache[cell] = k;
    return k;
  }
}

export type Dither = 'none' | 'floyd-steinberg' | 'bayer-2' | 'bayer-4' | 'bayer-8' | 'bayer-16';

/** Quantize.bayer's matrix: normalized_bayer_matrix(log2 order) * spread + 0.5. */
export function bayerMatrix(order: number, paletteSize: number): Float32Array {
  let m: number[][] = [[0]];
  for (let n = 1; 2 ** n <= order; n++) {
    const q = 4 ** n;
    const s = m.length;
    const next: number[][] = Array.from({ length: 2 * s }, () => new Array<number>(2 * s));
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      const v = q * m[y][x];
      next[y][x] = (v - 1.5) / q;
      next[y][x + s] = (v + 0.5) / q;
      next[y + s][x] = (v + 1.5) / q;
      next[y + s][x + s] = (v - 0.5) / q;
    }
    m = next;
  }
  const spread = (2 * 256) / paletteSize;
  return Float32Array.from(m.flat(), (v) => spread * v + 0.5);
}

/** Maps RGB24 pixels onto the palette; returns RGB24 of palette colours. */
export function applyPalette(rgb: Uint8Array, width: number, height: number, palette: Palette, dither: Dither): Uint8Array {
  const map = new PaletteMapper(palette);
  const p = palette.rgb;
  const out = new Uint8Array(rgb.length);
  const put = (j: number, k: number) => {
    out[j] = p[k * 3];
    out[j + 1] = p[k * 3 + 1];
    out[j + 2] = p[k * 3 + 2];
  };
  if (dither === 'none') {
    for (let j = 0; j < rgb.length; j += 3) put(j, map.index(rgb[j], rgb[j + 1], rgb[j + 2]));
  } else if (dither === 'floyd-steinberg') {
    floydSteinberg(rgb, width, height, map, put);
  } else {
    const order = Number(dither.split('-')[1]);
    const m = bayerMatrix(order, palette.size);
    const add = (v: number, t: number) => {
      const s = v + t;
      return s <= 0 ? 0 : s >= 255 ? 255 : s | 0;
    };
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const j = (y * width + x) * 3;
        const t = m[(y % order) * order + (x % order)];
        put(j, map.index(add(rgb[j], t), add(rgb[j + 1], t), add(rgb[j + 2], t)));
      }
  }
  return out;
}

const clip8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/** Pillow's convert.c Floyd-Steinberg (integer errors in sixteenths, serpentine-free, row-major). */
function floydSteinberg(rgb: Uint8Array, width: number, height: number, map: PaletteMapper, put: (j: number, k: number) => void): void {
  const p = map.palette.rgb;
  const errors = new Int32Array((width + 1) * 3);
  const v = new Int32Array(3);
  for (let y = 0; y < height; y++) {
    const cur = new Int32Array(3);
    const e0 = new Int32Array(3);
    const e1 = new Int32Array(3);
    const last = new Int32Array(3);
    let e = 0;
    for (let x = 0; x < width; x++) {
      const j = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) v[c] = clip8(rgb[j + c] + Math.trunc((cur[c] + errors[e + 3 + c]) / 16));
      const k = map.index(v[0], v[1], v[2]);
      put(j, k);
      for (let c = 0; c < 3; c++) {
        let err = v[c] - p[k * 3 + c];
        const err1 = err;
        const d2 = err + err;
        err += d2;
        errors[e + c] = err + e0[c];
        err += d2;
        e0[c] = err + e1[c];
        e1[c] = err1;
        last[c] = err1;
        err += d2;
        cur[c] = err;
      }
      e += 3;
    }
    // Pillow stores the blue channel's carries in all three slots here; kept for parity.
    errors[e] = e0[2];
    errors[e + 1] = e1[2];
    errors[e + 2] = last[2];
  }
}
