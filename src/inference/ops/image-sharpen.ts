// ImageSharpen (sharpen_radius, sigma, alpha). ComfyUI's kernel is -10a*G with its centre raised by
// 10a*sum(G) + 1, i.e. out = (1 + 10a) * x - 10a * blur(x): one separable blur and an axpy, then
// clamp to 0..1 — the same numbers as the (2r+1)^2 convolution, at a fraction of the work.
import { gaussianBlur } from '../onnx/image.ts';
import { numInput, type GraphOp } from './types.ts';

export const imageSharpen: GraphOp = {
  kind: 'graph',
  imageInputs: ['image'],
  build(g, node, { image }) {
    const radius = numInput(node, 'sharpen_radius', 0, 31, true);
    const sigma = numInput(node, 'sigma', 0.01, 10);
    const alpha = numInput(node, 'alpha', 0, 5);
    if (radius === 0 || radius >= Math.min(image.width, image.height)) return image;
    const blurred = gaussianBlur(g, image, radius, sigma);
    const a = g.op1('Mul', [image.name, g.scalar(1 + 10 * alpha)]);
    const b = g.op1('Mul', [blurred.name, g.scalar(10 * alpha)]);
    const d = g.op1('Sub', [a, b]);
    return { name: g.op1('Clip', [d, g.scalar(0), g.scalar(1)], {}, 'sharpen'), width: image.width, height: image.height };
  },
};
