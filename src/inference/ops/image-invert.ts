// ImageInvert: 1 - image.
import type { GraphOp } from './types.ts';

export const imageInvert: GraphOp = {
  kind: 'graph',
  imageInputs: ['image'],
  build(g, _node, { image }) {
    return { ...image, name: g.op1('Sub', [g.scalar(1), image.name], {}, 'invert') };
  },
};
