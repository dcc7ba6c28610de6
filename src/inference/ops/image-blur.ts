// ImageBlur (blur_radius 1..31, sigma 0.1..10): ComfyUI's gaussian over linspace(-1,1,2r+1) with
// reflect padding, computed as two 1-D passes (the kernel and its normalisation factorise).
import { gaussianBlur } from '../onnx/image.ts';
import { numInput, type GraphOp } from './types.ts';

export const imageBlur: GraphOp = {
  kind: 'graph',
  imageInputs: ['image'],
  build(g, node, { image }) {
    const radius = numInput(node, 'blur_radius', 0, 31, true);
    const sigma = numInput(node, 'sigma', 0.01, 10);
    if (radius >= Math.min(image.width, image.height)) return image; // torch's reflect pad refuses this too; keep the frame
    return gaussianBlur(g, image, radius, sigma);
  },
};
