// The contract between the compiler and one node type. A node is either a graph op (it appends
// ONNX nodes to the shared builder, so the compiler can fuse it with its neighbours into one
// session) or a host op (it runs outside the fused graph: its own session, or a step that needs
// data-dependent work such as a palette). Every IMAGE between ops is float32 NCHW [1,3,H,W] in 0..1,
// or, where an exact byte form exists, uint8 HWC [H,W,3] bytes with their table (onnx/image.ts).
import type ort from 'onnxruntime-node';
import type { InferenceConfig } from '../../config.ts';
import type { GraphBuilder } from '../onnx/builder.ts';
import type { ImageValue } from '../onnx/image.ts';
import { isLink, type ResolvedNode } from '../types.ts';
import { GraphError } from './errors.ts';

export interface Size {
  width: number;
  height: number;
}

export interface GraphOp {
  kind: 'graph';
  /** Input names that carry an IMAGE link. */
  imageInputs: readonly string[];
  build(g: GraphBuilder, node: ResolvedNode, images: Record<string, ImageValue>): ImageValue;
}

export interface HostEnv {
  workspace: string;
  config: InferenceConfig;
  sessionOptions: ort.InferenceSession.SessionOptions;
}

/** How an IMAGE reaches or leaves a host step: float32 NCHW [1,3,H,W], or uint8 HWC [H,W,3] bytes
 *  whose byte b stands for the float lut[b]. */
export type Carried = { kind: 'float' } | { kind: 'bytes'; lut: Float32Array };

export const FLOAT: Carried = Object.freeze({ kind: 'float' });

export interface HostStep {
  /** Size of the IMAGE this step returns. */
  readonly size: Size;
  /** What run() returns (default float). */
  readonly output?: Carried;
  /** Its inputs are valid only until the graph run ends (onnxruntime's outputs are freed then):
   *  a step keeps nothing of them past the call. */
  run(images: Record<string, ort.Tensor>): Promise<ort.Tensor>;
  release(): Promise<void>;
}

export interface HostOp {
  kind: 'host';
  imageInputs: readonly string[];
  /** Whether the step can take its IMAGEs as bytes (the compiler then passes bytes where an exact
   *  byte form exists); otherwise every input comes as float. */
  takesBytes?: boolean;
  /** `carried`: how each image input will arrive (always float unless `takesBytes`). */
  create(node: ResolvedNode, sizes: Record<string, Size>, env: HostEnv, carried: Record<string, Carried>): Promise<HostStep>;
}

export type NodeOp = GraphOp | HostOp;

function get(node: ResolvedNode, name: string): unknown {
  const v = node.inputs[name];
  if (v === undefined) throw new GraphError('GRAPH_BAD_INPUT', `${node.classType} input "${name}" is missing`, node.id);
  if (isLink(v)) throw new GraphError('GRAPH_BAD_INPUT', `${node.classType} input "${name}" must be a literal, not a link`, node.id);
  return v;
}

/** A numeric literal input, checked to lie in [min, max] (and to be an integer when `int`). */
export function numInput(node: ResolvedNode, name: string, min: number, max: number, int = false): number {
  const v = get(node, name);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v))) {
    throw new GraphError('GRAPH_BAD_INPUT', `${node.classType} input "${name}" must be ${int ? 'an integer' : 'a number'} in ${min}..${max}, got ${JSON.stringify(v)}`, node.id);
  }
  return v;
}

/** A combo input, checked against its options. */
export function comboInput<T extends string>(node: ResolvedNode, name: string, options: readonly T[]): T {
  const v = get(node, name);
  if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) {
    throw new GraphError('GRAPH_BAD_INPUT', `${node.classType} input "${name}" must be one of ${options.join(', ')}, got ${JSON.stringify(v)}`, node.id);
  }
  return v as T;
}

export function stringInput(node: ResolvedNode, name: string): string {
  const v = get(node, name);
  if (typeof v !== 'string') throw new GraphError('GRAPH_BAD_INPUT', `${node.classType} input "${name}" must be a string`, node.id);
  return v;
}
