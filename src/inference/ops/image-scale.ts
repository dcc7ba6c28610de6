// ImageScale (upscale_method, width, height, crop) and ImageScaleBy (upscale_method, scale_by), with
// nodes.py's size rules: width or height 0 keeps the aspect ratio (both 0: unchanged), scale_by
// rounds with Python's round().
import { commonUpscale, pyRound, UPSCALE_METHODS } from '../onnx/resize.ts';
import type { Size } from './types.ts';
import { comboInput, numInput, type GraphOp } from './types.ts';
import type { ResolvedNode } from '../types.ts';

/** ImageScale's output size for an input of `size`, or null when it passes the image through. */
export function imageScaleSize(node: ResolvedNode, size: Size, maxSide: number): Size | null {
  let width = numInput(node, 'width', 0, maxSide, true);
  let height = numInput(node, 'height', 0, maxSide, true);
  if (width === 0 && height === 0) return null;
  if (width === 0) width = Math.max(1, pyRound((size.width * height) / size.height));
  else if (height === 0) height = Math.max(1, pyRound((size.height * width) / size.width));
  return { width, height };
}

export function scaleBySize(node: ResolvedNode, size: Size): Size {
  const s = numInput(node, 'scale_by', 0.01, 8);
  return { width: Math.max(1, pyRound(size.width * s)), height: Math.max(1, pyRound(size.height * s)) };
}

export function makeImageScale(maxSide: number): GraphOp {
  return {
    kind: 'graph',
    imageInputs: ['image'],
    build(g, node, { image }) {
      const method = comboInput(node, 'upscale_method', UPSCALE_METHODS);
      const crop = comboInput(node, 'crop', ['disabled', 'center'] as const);
      const size = imageScaleSize(node, image, maxSide);
      if (!size) return image;
      return commonUpscale(g, image, size.width, size.height, method, crop);
    },
  };
}

export const imageScaleBy: GraphOp = {
  kind: 'graph',
  imageInputs: ['image'],
  build(g, node, { image }) {
    const method = comboInput(node, 'upscale_method', UPSCALE_METHODS);
    const size = scaleBySize(node, image);
    return commonUpscale(g, image, size.width, size.height, method, 'disabled');
  },
};
