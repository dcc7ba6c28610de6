// ImageInvert: 1 - image. On bytes it is exact as 255 - x, i.e. BitwiseNot of uint8 (the table maps
// through 1 - v, so SaveTensor checks that those bytes are what storing 1 - v gives).
import { mapLut } from '../onnx/image.ts';
import type { GraphOp } from './types.ts';

export const imageInvert: GraphOp = {
  kind: 'graph',
  imageInputs: ['image'],
  build(g, _node, { image }) {
    const name = g.op1('Sub', [g.scalar(1), image.name], {}, 'invert');
    const bytes = image.bytes && {
      name: g.op1('BitwiseNot', [image.bytes.name], {}, 'invert_u8'),
      lut: mapLut(image.bytes.lut, (b) => 255 - b, (v) => Math.fround(1 - v)),
    };
    return { name, width: image.width, height: image.height, bytes };
  },
};
