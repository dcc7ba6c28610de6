// ImageQuantize (colors 1..256, dither none / floyd-steinberg / bayer-2..16): a host step, because
// the palette is a median cut of each frame (see palette.ts). ComfyUI truncates to uint8 first
// ((x * 255).to(uint8)) and returns palette colours / 255.
import ort from 'onnxruntime-node';
import { applyPalette, medianCutPalette, type Dither } from './palette.ts';
import { comboInput, numInput, type HostOp } from './types.ts';

export const DITHERS = ['none', 'floyd-steinberg', 'bayer-2', 'bayer-4', 'bayer-8', 'bayer-16'] as const;

export function quantizeRgb(rgb: Uint8Array, width: number, height: number, colors: number, dither: Dither): Uint8Array {
  return applyPalette(rgb, width, height, medianCutPalette(rgb, colors), dither);
}

export const imageQuantize: HostOp = {
  kind: 'host',
  imageInputs: ['image'],
  async create(node, sizes) {
    const colors = numInput(node, 'colors', 1, 256, true);
    const dither = comboInput(node, 'dither', DITHERS);
    const { width, height } = sizes.image;
    const plane = width * height;
    return {
      size: { width, height },
      async run({ image }) {
        const src = image.data as Float32Array;
        const rgb = new Uint8Array(plane * 3);
        for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) {
          const v = Math.fround(src[c * plane + i] * 255); // float32 product, as torch computes it
          rgb[i * 3 + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
        }
        const q = quantizeRgb(rgb, width, height, colors, dither);
        const out = new Float32Array(plane * 3);
        for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[c * plane + i] = q[i * 3 + c] / 255;
        return new ort.Tensor('float32', out, [1, 3, height, width]);
      },
      async release() {},
    };
  },
};
