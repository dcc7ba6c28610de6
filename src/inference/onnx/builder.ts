// A small graph builder over onnx-proto: nodes, constants and typed inputs/outputs, serialised to the
// bytes onnxruntime loads. Every op builder writes through one GraphBuilder so names never collide
// and the compiler can fuse a whole prompt into one ModelProto.
import onnxPkg from 'onnx-proto';

const { onnx } = onnxPkg;
type INodeProto = import('onnx-proto').onnx.INodeProto;
type ITensorProto = import('onnx-proto').onnx.ITensorProto;
type IValueInfoProto = import('onnx-proto').onnx.IValueInfoProto;
type IAttributeProto = import('onnx-proto').onnx.IAttributeProto;

/** The onnx opset every generated graph declares: 18 for BitwiseNot (IR version 8 pairs with
 *  opsets up to 18). None of the ops the builders use changed meaning from 17 to 18. */
export const OPSET = 18;
export const IR_VERSION = 8;

export type ElemType = 'float32' | 'uint8' | 'int32' | 'int64';
const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
};
/** `Cast`'s `to` attribute for each element type. */
export const CAST_TO: Record<ElemType, number> = ELEM;

export type AttrValue = number | string | number[] | { float: number } | { floats: number[] } | { ints: number[] };

function attribute(name: string, v: AttrValue): IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.INTS, ints: v.ints };
}

function valueInfo(name: string, type: ElemType, shape: Array<number | string>): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export class GraphBuilder {
  private readonly nodes: INodeProto[] = [];
  private readonly inits: ITensorProto[] = [];
  private readonly inputs: IValueInfoProto[] = [];
  private readonly outputs: IValueInfoProto[] = [];
  private readonly constCache = new Map<string, string>();
  private seq = 0;

  constructor(readonly name = 'streamfleet') {}

  /** A fresh tensor name with a readable prefix (the node id it belongs to). */
  fresh(prefix: string): string {
    return `${prefix.replace(/[^A-Za-z0-9_]/g, '_')}_${this.seq++}`;
  }

  input(name: string, type: ElemType, shape: Array<number | string>): string {
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  output(name: string, type: ElemType, shape: Array<number | string>): void {
    this.outputs.push(valueInfo(name, type, shape));
  }

  /** Adds one node; returns its output names (`outputs` of them, default 1). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, prefix = opType): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(prefix));
    this.nodes.push({
      opType,
      input: inputs,
      output: outs,
      name: this.fresh(`n_${opType}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** One-output convenience for `op`. */
  op1(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, prefix = opType): string {
    return this.op(opType, inputs, attrs, 1, prefix)[0];
  }

  /** A float32 initializer; identical scalars are shared. */
  f32(values: ArrayLike<number>, dims: number[]): string {
    const key = values.length <= 4 ? `f:${dims.join(',')}:${Array.from(values).join(',')}` : '';
    if (key && this.constCache.has(key)) return this.constCache.get(key)!;
    const name = this.fresh('c');
    this.inits.push({ name, dataType: ELEM.float32, dims, floatData: Array.from(values) });
    if (key) this.constCache.set(key, name);
    return name;
  }

  /** A float32 scalar initializer (rank 0), for broadcasting arithmetic. */
  scalar(v: number): string {
    return this.f32([v], []);
  }

  /** An int64 initializer (shapes, axes, indices). */
  i64(values: ArrayLike<number>, dims: number[] = [values.length]): string {
    const key = values.length <= 8 ? `i:${dims.join(',')}:${Array.from(values).join(',')}` : '';
    if (key && this.constCache.has(key)) return this.constCache.get(key)!;
    const name = this.fresh('ci');
    this.inits.push({ name, dataType: ELEM.int64, dims, int64Data: Array.from(values) });
    if (key) this.constCache.set(key, name);
    return name;
  }

  /** A uint8 initializer (byte lookup tables). */
  u8(values: ArrayLike<number>, dims: number[] = [values.length]): string {
    const name = this.fresh('cu');
    this.inits.push({ name, dataType: ELEM.uint8, dims, rawData: Uint8Array.from(values) });
    return name;
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  get outputCount(): number {
    return this.outputs.length;
  }

  /** The nodes the outputs depend on (in order), and the tensor names they read. */
  private live(): { nodes: INodeProto[]; needed: Set<string> } {
    const needed = new Set<string>(this.outputs.map((o) => o.name!));
    const keep: INodeProto[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (!(n.output ?? []).some((o) => needed.has(o))) continue;
      keep.push(n);
      for (const x of n.input ?? []) if (x) needed.add(x);
    }
    return { nodes: keep.reverse(), needed };
  }

  /** Serialises to ModelProto bytes for `InferenceSession.create(bytes)`. Only what the outputs
   *  depend on goes in: op builders may offer an IMAGE both as float32 and as bytes, and the
   *  representation no consumer read (with its inputs and constants) is left out. */
  toBytes(): Uint8Array {
    const { nodes, needed } = this.live();
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'streamfleet',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: this.name,
        node: nodes,
        initializer: this.inits.filter((t) => needed.has(t.name!)),
        input: this.inputs.filter((i) => needed.has(i.name!)),
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
