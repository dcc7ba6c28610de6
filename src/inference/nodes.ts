// The node classes streamfleet runs, declared the way ComfyUI declares them (INPUT_TYPES, RETURN_TYPES,
// OUTPUT_NODE, CATEGORY, ...), so validation and `/object_info` answer exactly what ComfyUI would.
// Specs of the stock image nodes are copied from ComfyUI's nodes.py / comfy_extras/nodes_post_processing.py.

/** A ComfyUI input type: a type name (`IMAGE`, `INT`, `FLOAT`, `STRING`, `BOOLEAN`, a comma union, `*`) or a combo. */
export type InputType = string | readonly string[];

/** The second element of an input spec (ComfyUI's `extra_info`). */
export interface InputOptions {
  default?: number | string | boolean;
  min?: number;
  max?: number;
  step?: number;
  tooltip?: string;
}

/** `[TYPE]` or `[TYPE, {default, min, max, step}]`, as in ComfyUI. */
export type InputSpec = readonly [InputType] | readonly [InputType, InputOptions];

export interface InputTypes {
  required?: Record<string, InputSpec>;
  optional?: Record<string, InputSpec>;
  hidden?: Record<string, InputSpec>;
}

export interface NodeDef {
  INPUT_TYPES: InputTypes;
  RETURN_TYPES: readonly string[];
  RETURN_NAMES?: readonly string[];
  OUTPUT_NODE?: boolean;
  CATEGORY: string;
  DESCRIPTION: string;
  DISPLAY_NAME: string;
}

/** ComfyUI's MAX_RESOLUTION (nodes.py). */
export const MAX_RESOLUTION = 16384;

export const UPSCALE_METHODS = ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos'] as const;
export const CROP_METHODS = ['disabled', 'center'] as const;
export const DITHER_MODES = ['none', 'floyd-steinberg', 'bayer-2', 'bayer-4', 'bayer-8', 'bayer-16'] as const;
export const BLEND_MODES = ['normal', 'multiply', 'screen', 'overlay', 'soft_light', 'difference'] as const;
export const REDACT_MODES = ['blur', 'black'] as const;

/** The frame input node (ComfyStream's LoadTensor). */
export const INPUT_CLASS = 'LoadTensor';
/** The frame output node (ComfyStream's SaveTensor). */
export const OUTPUT_CLASS = 'SaveTensor';

/** What node declarations depend on: the files present in the workspace. */
export interface NodeContext {
  /** .onnx files in the workspace's models/ folder (the OnnxModel combo). */
  models: readonly string[];
  /** Include the test-only classes (config `inference.testNodes`). Default false. */
  testNodes?: boolean;
}

/** The test-only frame holder (registered only with `inference.testNodes`). */
export const HOLD_CLASS = 'TestHoldFrame';

/** Classes that exist only with `inference.testNodes` on. */
export function testNodeDefinitions(): Record<string, NodeDef> {
  return {
    [HOLD_CLASS]: {
      INPUT_TYPES: {
        required: {
          image: ['IMAGE'],
          hold_ms: ['INT', { default: 60, min: 0, max: 10_000, step: 1 }],
        },
      },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'streamfleet/testing',
      DISPLAY_NAME: 'Hold Frame (test)',
      DESCRIPTION: 'Test only: passes the image through unchanged after holding each frame hold_ms milliseconds.',
    },
  };
}

/** Every node class, keyed by class_type. Combos that list files are filled from `ctx`. */
export function nodeDefinitions(ctx: NodeContext): Record<string, NodeDef> {
  return { ...stockDefinitions(ctx), ...(ctx.testNodes ? testNodeDefinitions() : {}) };
}

function stockDefinitions(ctx: NodeContext): Record<string, NodeDef> {
  const image = ['IMAGE'] as const;
  return {
    LoadTensor: {
      INPUT_TYPES: { required: {} },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'tensor_utils',
      DISPLAY_NAME: 'Load Tensor',
      DESCRIPTION: 'The current video frame, as an IMAGE [1,H,W,3] in 0..1.',
    },
    SaveTensor: {
      INPUT_TYPES: { required: { images: image } },
      RETURN_TYPES: [],
      OUTPUT_NODE: true,
      CATEGORY: 'tensor_utils',
      DISPLAY_NAME: 'Save Tensor',
      DESCRIPTION: 'The frame sent back to the stream. PreviewImage and SaveImage are read as this node.',
    },
    ImageInvert: {
      INPUT_TYPES: { required: { image } },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'image',
      DISPLAY_NAME: 'Invert Image',
      DESCRIPTION: 'Inverts the image: 1 - image.',
    },
    ImageBlur: {
      INPUT_TYPES: {
        required: {
          image,
          blur_radius: ['INT', { default: 1, min: 1, max: 31, step: 1 }],
          sigma: ['FLOAT', { default: 1.0, min: 0.1, max: 10.0, step: 0.1 }],
        },
      },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'image/postprocessing',
      DISPLAY_NAME: 'Image Blur',
      DESCRIPTION: 'Gaussian blur with a (2*blur_radius+1) kernel.',
    },
    ImageSharpen: {
      INPUT_TYPES: {
        required: {
          image,
          sharpen_radius: ['INT', { default: 1, min: 1, max: 31, step: 1 }],
          sigma: ['FLOAT', { default: 1.0, min: 0.1, max: 10.0, step: 0.01 }],
          alpha: ['FLOAT', { default: 1.0, min: 0.0, max: 5.0, step: 0.01 }],
        },
      },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'image/postprocessing',
      DISPLAY_NAME: 'Image Sharpen',
      DESCRIPTION: 'Unsharp-mask style sharpening with a Gaussian-weighted Laplacian kernel.',
    },
    ImageQuantize: {
      INPUT_TYPES: {
        required: {
          image,
          colors: ['INT', { default: 256, min: 1, max: 256, step: 1 }],
          dither: [DITHER_MODES],
        },
      },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'image/postprocessing',
      DISPLAY_NAME: 'Image Quantize',
      DESCRIPTION: 'Reduces the image to at most `colors` colours, optionally dithered.',
    },
    ImageBlend: {
      INPUT_TYPES: {
        required: {
          image1: image,
          image2: image,
          blend_factor: ['FLOAT', { default: 0.5, min: 0.0, max: 1.0, step: 0.01 }],
          blend_mode: [BLEND_MODES],
        },
      },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'image/postprocessing',
      DISPLAY_NAME: 'Image Blend',
      DESCRIPTION: 'Blends image2 over image1 with a blend mode and factor.',
    },
    ImageScale: {
      INPUT_TYPES: {
        required: {
          image,
          upscale_method: [UPSCALE_METHODS],
          width: ['INT', { default: 512, min: 0, max: MAX_RESOLUTION, step: 1 }],
          height: ['INT', { default: 512, min: 0, max: MAX_RESOLUTION, step: 1 }],
          crop: [CROP_METHODS],
        },
      },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'image/upscaling',
      DISPLAY_NAME: 'Upscale Image',
      DESCRIPTION: 'Resizes to width x height (0 keeps the aspect ratio from the other side).',
    },
    ImageScaleBy: {
      INPUT_TYPES: {
        required: {
          image,
          upscale_method: [UPSCALE_METHODS],
          scale_by: ['FLOAT', { default: 1.0, min: 0.01, max: 8.0, step: 0.01 }],
        },
      },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'image/upscaling',
      DISPLAY_NAME: 'Upscale Image By',
      DESCRIPTION: 'Resizes by a factor.',
    },
    OnnxModel: {
      INPUT_TYPES: {
        required: {
          image,
          model_name: [ctx.models],
        },
      },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'streamfleet/onnx',
      DISPLAY_NAME: 'ONNX Model',
      DESCRIPTION: "Runs an image-to-image .onnx model from the workspace's models/ folder on the frame.",
    },
    TextRedact: {
      INPUT_TYPES: {
        required: { image },
        // Tuning knobs are optional so a bare `{"image": [...]}` redacts with sensible defaults.
        optional: {
          mode: [REDACT_MODES, { default: 'blur' }],
          threshold: ['FLOAT', { default: 0.3, min: 0.0, max: 1.0, step: 0.01 }],
          padding: ['INT', { default: 10, min: 0, max: 64, step: 1 }],
          blur_radius: ['INT', { default: 15, min: 1, max: 63, step: 1 }],
        },
      },
      RETURN_TYPES: ['IMAGE'],
      CATEGORY: 'streamfleet/privacy',
      DISPLAY_NAME: 'Text Redact',
      DESCRIPTION:
        'Finds text with the PP-OCR detector and blurs or blacks out each region (padded by `padding` pixels) whose score is above `threshold`.',
    },
  };
}
