// Node type -> op builder. LoadTensor and SaveTensor are the graph's edges and are wired by the
// compiler itself (uint8 HWC frame in, uint8 HWC frame out).
import type { InferenceConfig } from '../../config.ts';
import { HOLD_CLASS } from '../nodes.ts';
import { imageBlend } from './image-blend.ts';
import { imageBlur } from './image-blur.ts';
import { imageInvert } from './image-invert.ts';
import { imageQuantize } from './image-quantize.ts';
import { imageScaleBy, makeImageScale } from './image-scale.ts';
import { imageSharpen } from './image-sharpen.ts';
import { onnxModel } from './onnx-model.ts';
import { testHoldFrame } from './test-hold-frame.ts';
import { textRedact } from './text-redact.ts';
import type { NodeOp } from './types.ts';

export const INPUT_NODE = 'LoadTensor';
export const OUTPUT_NODE = 'SaveTensor';

export function nodeOps(config: InferenceConfig): Record<string, NodeOp> {
  return {
    ImageInvert: imageInvert,
    ImageBlur: imageBlur,
    ImageSharpen: imageSharpen,
    ImageBlend: imageBlend,
    ImageScale: makeImageScale(config.maxScaleSide),
    ImageScaleBy: imageScaleBy,
    ImageQuantize: imageQuantize,
    OnnxModel: onnxModel,
    TextRedact: textRedact,
    // Test-only classes exist only with inference.testNodes (the registry follows the same flag).
    ...(config.testNodes ? { [HOLD_CLASS]: testHoldFrame } : {}),
  };
}

/** Node types the compiler can build (for the validator's registry and tests). */
export const COMPILABLE_NODES = [INPUT_NODE, OUTPUT_NODE, 'ImageInvert', 'ImageBlur', 'ImageSharpen', 'ImageBlend', 'ImageScale', 'ImageScaleBy', 'ImageQuantize', 'OnnxModel', 'TextRedact'] as const;
