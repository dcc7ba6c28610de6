// ImageQuantize (colors 1..256, dither none / floyd-steinberg / bayer-2..16): a host step, because
// the palette is a median cut of each frame (see palette.ts). ComfyUI truncates to uint8 first
// ((x * 255).to(uint8)) and returns palette colours / 255. In the byte domain it takes and returns
// bytes, so a prompt around it converts nothing to float32.
import ort from 'onnxruntime-node';
import { applyPalette, medianCutPalette, type Dither } from './palette.ts';
import { FRAME_LUT } from '../onnx/image.ts';
import { comboInput, FLOAT, numInput, type HostOp } from './types.ts';

export const DITHERS = ['none', 'floyd-steinberg', 'bayer-2', 'bayer-4', 'bayer-8', 'bayer-16'] as const;

export function quantizeRgb(rgb: Uint8Array, width: number, height: number, colors: number, dither: Dither): Uint8Array {
  return applyPalette(rgb, width, height, medianCutPalette(rgb, colors), dither);
}

/** ComfyUI's `(x * 255).to(uint8)` for one float32 value: the product in float32, then truncated
 *  (clamped to 0..255 first, as a saturating cast would). */
function truncByte(v: number): number {
  const p = Math.fround(v * 255);
  return p <= 0 ? 0 : p >= 255 ? 255 : Math.trunc(p);
}

export const imageQuantize: HostOp = {
  kind: 'host',
  imageInputs: ['image'],
  takesBytes: true,
  async create(node, sizes, _env, carried) {
    const colors = numInput(node, 'colors', 1, 256, true);
    const dither = comboInput(node, 'dither', DITHERS);
    const { width, height } = sizes.image;
    const plane = width * height;
    const inCarried = carried.image;
    // Bytes in: the 8-bit image ComfyUI quantizes is a table over them (often the bytes themselves),
    // and the palette's colours go out as bytes, whose floats are colour / 255 like the frame's.
    const table = inCarried.kind === 'bytes' ? Uint8Array.from(inCarried.lut, truncByte) : null;
    const asIs = table !== null && table.every((v, b) => v === b);
    return {
      size: { width, height },
      output: table ? { kind: 'bytes', lut: FRAME_LUT } : FLOAT,
      async run({ image }) {
        if (table) {
          const src = image.data as Uint8Array;
          let rgb = src;
          if (!asIs) {
            rgb = new Uint8Array(src.length);
            for (let i = 0; i < src.length; i++) rgb[i] = table[src[i]];
          }
          return new ort.Tensor('uint8', quantizeRgb(rgb, width, height, colors, dither), [height, width, 3]);
        }
        const src = image.data as Float32Array;
        const rgb = new Uint8Array(plane * 3);
        for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) rgb[i * 3 + c] = truncByte(src[c * plane + i]);
        const q = quantizeRgb(rgb, width, height, colors, dither);
        const out = new Float32Array(plane * 3);
        for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[c * plane + i] = q[i * 3 + c] / 255;
        return new ort.Tensor('float32', out, [1, 3, height, width]);
      },
      async release() {},
    };
  },
};
