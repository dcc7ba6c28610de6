// ImageBlend (image1, image2, blend_factor, blend_mode). image2 of another size is first fitted to
// image1 with common_upscale(bicubic, center crop), as ComfyUI does; then
// out = clamp(image1 * (1 - f) + mode(image1, image2) * f, 0, 1).
import type { GraphBuilder } from '../onnx/builder.ts';
import { lutInUnitRange } from '../onnx/image.ts';
import { commonUpscale } from '../onnx/resize.ts';
import { comboInput, numInput, type GraphOp } from './types.ts';

export const BLEND_MODES = ['normal', 'multiply', 'screen', 'overlay', 'soft_light', 'difference'] as const;
export type BlendMode = (typeof BLEND_MODES)[number];

function mode(g: GraphBuilder, a: string, b: string, m: BlendMode): string {
  const one = g.scalar(1);
  const two = g.scalar(2);
  const half = g.scalar(0.5);
  const mul = (x: string, y: string) => g.op1('Mul', [x, y]);
  const sub = (x: string, y: string) => g.op1('Sub', [x, y]);
  const add = (x: string, y: string) => g.op1('Add', [x, y]);
  switch (m) {
    case 'normal':
      return b;
    case 'multiply':
      return mul(a, b);
    case 'screen':
      return sub(one, mul(sub(one, a), sub(one, b)));
    case 'overlay': {
      const low = mul(two, mul(a, b));
      const high = sub(one, mul(two, mul(sub(one, a), sub(one, b))));
      return g.op1('Where', [g.op1('LessOrEqual', [a, half]), low, high]);
    }
    case 'soft_light': {
      // g(x) = x <= 0.25 ? ((16x - 12)x + 4)x : sqrt(x)
      const poly = mul(add(mul(sub(mul(g.scalar(16), a), g.scalar(12)), a), g.scalar(4)), a);
      const gx = g.op1('Where', [g.op1('LessOrEqual', [a, g.scalar(0.25)]), poly, g.op1('Sqrt', [a])]);
      const low = sub(a, mul(mul(sub(one, mul(two, b)), a), sub(one, a)));
      const high = add(a, mul(sub(mul(two, b), one), sub(gx, a)));
      return g.op1('Where', [g.op1('LessOrEqual', [b, half]), low, high]);
    }
    case 'difference':
      return sub(a, b);
  }
}

export const imageBlend: GraphOp = {
  kind: 'graph',
  imageInputs: ['image1', 'image2'],
  build(g, node, { image1, image2 }) {
    const f = numInput(node, 'blend_factor', 0, 1);
    const m = comboInput(node, 'blend_mode', BLEND_MODES);
    // Exact shortcuts, on values known to be finite (both have a byte form): with factor 0 the
    // result is clamp(image1 * 1 + mode * 0) = image1 when image1 lies in 0..1; with factor 1 and
    // mode normal it is clamp(image1 * 0 + image2) = image2 when that lies in 0..1 at image1's size.
    if (image1.bytes && image2.bytes) {
      if (f === 0 && lutInUnitRange(image1.bytes.lut)) return image1;
      if (f === 1 && m === 'normal' && lutInUnitRange(image2.bytes.lut) && image2.width === image1.width && image2.height === image1.height) return image2;
    }
    let img2 = image2;
    if (img2.width !== image1.width || img2.height !== image1.height) img2 = commonUpscale(g, img2, image1.width, image1.height, 'bicubic', 'center');
    const blended = mode(g, image1.name, img2.name, m);
    const mixed = g.op1('Add', [g.op1('Mul', [image1.name, g.scalar(1 - f)]), g.op1('Mul', [blended, g.scalar(f)])]);
    return { name: g.op1('Clip', [mixed, g.scalar(0), g.scalar(1)], {}, 'blend'), width: image1.width, height: image1.height };
  },
};
