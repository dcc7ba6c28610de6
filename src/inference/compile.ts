// The graph compiler: a ResolvedPrompt becomes a FrameGraph. Consecutive graph ops are fused into
// one onnxruntime session (for the built-in image nodes that is the whole prompt: uint8 HWC frame
// in, one conversion to float32, every node, clamp + round, uint8 HWC frame out). Host ops
// (OnnxModel, TextRedact, ImageQuantize) split the chain: the fused segment before them exports the
// IMAGEs later stages need, and the next segment takes them as inputs.
//
// The byte domain (onnx/image.ts): ops exact on bytes keep the frame as uint8, beside the float
// path, and the model keeps whichever a consumer reads. So a prompt of byte ops alone never
// converts to float32 (ImageInvert is one BitwiseNot), a prompt that gives the frame back runs no
// session at all, and IMAGEs cross host steps as bytes where the step takes them (ImageQuantize),
// converted once in the next segment if a float op needs them. `bytes: false` compiles the
// all-float32 path; both give the same output bytes (test/graph-bytes.test.ts).
import ort from 'onnxruntime-node';
import { defaultConfig, type InferenceConfig } from '../config.ts';
import { freeNow } from '../free-buffer.ts';
import { rootLogger, type Logger } from '../log.ts';
import { GraphBuilder } from './onnx/builder.ts';
import { bytesToImage, frameToImage, imageToFrame, storesAsIs, type ImageValue } from './onnx/image.ts';
import { GraphError } from './ops/errors.ts';
import { INPUT_NODE, nodeOps, OUTPUT_NODE } from './ops/index.ts';
import { FLOAT, type Carried, type HostEnv, type HostStep, type NodeOp, type Size } from './ops/types.ts';
import { cudaAvailable, graphKey, SessionCache, sessionOptions, type Provider, type Releasable } from './sessions.ts';
import { isLink, type FrameGraph, type ResolvedNode, type ResolvedPrompt } from './types.ts';

export interface CompileOptions {
  width: number;
  height: number;
  workspace: string;
  provider?: Provider;
  config?: InferenceConfig;
  /** Defaults to the process-wide cache sized by config.sessionCacheSize. */
  cache?: SessionCache<CompiledGraph>;
  logger?: Logger;
  /** false: one session per node, all in float32 (the unfused baseline the benchmark compares
   *  against). Default true. */
  fuse?: boolean;
  /** false: every IMAGE in float32, the frame converted in and out even where an op is exact on
   *  bytes (the float path the byte domain is checked and measured against). Default true. */
  bytes?: boolean;
}

/** Key of the frame in the per-frame value map, and its input name in the segment that reads it. */
const FRAME = 'frame';
const FRAME_OUT = 'frame_out';

type Repr = 'float' | 'bytes';
/** Key of a node's IMAGE in the per-frame value map, in one representation. */
const valueKey = (id: string, repr: Repr): string => `${repr === 'float' ? 'f' : 'b'}:${id}`;

interface SegmentStage {
  kind: 'onnx';
  g: GraphBuilder;
  /** node id -> its IMAGE in this segment */
  local: Map<string, ImageValue>;
  /** graph input name -> value key it is fed from */
  feeds: Map<string, string>;
  /** value key -> graph input name (a value read twice is one input) */
  inputOf: Map<string, string>;
  /** value key -> the graph output that gives it to later stages */
  exports: Map<string, { name: string; repr: Repr; width: number; height: number }>;
  session?: ort.InferenceSession;
  /** output name -> value key */
  outputs?: Map<string, string>;
}

interface HostStage {
  kind: 'host';
  nodeId: string;
  /** step input name -> value key */
  inputs: Record<string, string>;
  step: HostStep;
  /** value key of what the step returns */
  outKey: string;
}

type Stage = SegmentStage | HostStage;

/** A compiled, warm prompt. Shared through the cache: `dispose()` drops one hold. */
export class CompiledGraph implements FrameGraph, Releasable {
  readonly width: number;
  readonly height: number;
  private queue: Promise<unknown> = Promise.resolve();
  private released = false;
  /** Set by compileGraph: how dispose() hands the hold back to the cache. */
  onDispose: () => Promise<void> = () => this.release();

  constructor(
    readonly promptId: string,
    readonly input: Size,
    readonly output: Size,
    readonly provider: Provider,
    private readonly stages: Stage[],
    /** Value key of the output frame (FRAME: the prompt gives the frame back as it came). */
    private readonly outKey: string,
  ) {
    this.width = input.width;
    this.height = input.height;
  }

  /** Stages run per frame: fused ONNX sessions plus host steps (1 when the whole prompt fused; 0
   *  when it gives the frame back unchanged). */
  get stageCount(): number {
    return this.stages.length;
  }

  /** The stages, for inspection: 'onnx' (fused segment) or the host node's id. */
  get stageKinds(): string[] {
    return this.stages.map((s) => (s.kind === 'onnx' ? 'onnx' : `host:${s.nodeId}`));
  }

  /**
   * Runs one RGB24 frame. Calls are served in order, one at a time. The result may be `rgb` itself
   * (a prompt that gives the frame back unchanged); or `out`, when given and of the output's size:
   * the output is copied into it; otherwise it owns its buffer. onnxruntime-node (1.30) makes a new
   * buffer for every output, even when given a pre-allocated one to write into (it writes there, then
   * still answers a copy: measured slower). Every such buffer not answered (the output once copied
   * out, every intermediate) is freed when the run ends (freeNow), not left for a collection.
   */
  run(rgb: Uint8Array, out?: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }> {
    const next = this.queue.then(() => this.runNow(rgb, out));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(rgb: Uint8Array, into?: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }> {
    if (this.released) throw new GraphError('GRAPH_DISPOSED', `graph ${this.promptId} was disposed`);
    const { width, height } = this.input;
    if (!(rgb instanceof Uint8Array) || rgb.length !== width * height * 3) {
      throw new GraphError('GRAPH_BAD_FRAME', `frame must be ${width}x${height} RGB24 (${width * height * 3} bytes), got ${rgb?.length ?? 'none'}`);
    }
    // The frame goes into onnxruntime as it is (a tensor over the caller's bytes, no copy).
    const values = new Map<string, ort.Tensor>();
    values.set(FRAME, new ort.Tensor('uint8', rgb, [height, width, 3]));
    // Every onnxruntime output is a new buffer of this run's own: freed at the end unless answered.
    const made: ArrayBufferView[] = [];
    for (const s of this.stages) {
      try {
        if (s.kind === 'onnx') {
          const feeds: Record<string, ort.Tensor> = {};
          for (const name of s.session!.inputNames) feeds[name] = values.get(s.feeds.get(name)!)!;
          const out = await s.session!.run(feeds);
          for (const [name, key] of s.outputs!) {
            values.set(key, out[name]);
            if (ArrayBuffer.isView(out[name].data)) made.push(out[name].data);
          }
        } else {
          const inputs: Record<string, ort.Tensor> = {};
          for (const [name, key] of Object.entries(s.inputs)) inputs[name] = values.get(key)!;
          values.set(s.outKey, await s.step.run(inputs));
        }
      } catch (cause) {
        if (cause instanceof GraphError) throw cause;
        throw new GraphError('GRAPH_RUN_FAILED', `graph ${this.promptId} failed in stage ${s.kind === 'onnx' ? 'onnx' : s.nodeId}`, s.kind === 'host' ? s.nodeId : undefined, { cause });
      }
    }
    if (this.outKey === FRAME) return { data: rgb, width, height };
    const data = values.get(this.outKey)!.data as Uint8Array;
    values.clear();
    const answer = into && into !== rgb && into.length === data.length ? into : data;
    if (answer !== data) answer.set(data);
    // The frame and the answer stay; each other buffer is freed once (outputs may share one).
    const done = new Set<ArrayBufferLike>([rgb.buffer, answer.buffer]);
    for (const v of made) {
      if (done.has(v.buffer)) continue;
      done.add(v.buffer);
      freeNow(v);
    }
    return { data: answer, width: this.output.width, height: this.output.height };
  }

  dispose(): Promise<void> {
    return this.onDispose();
  }

  /** Frees every session (the cache calls this on eviction). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.queue;
    for (const s of this.stages) {
      if (s.kind === 'onnx') await s.session?.release();
      else await s.step.release();
    }
  }
}

let processCache: SessionCache<CompiledGraph> | undefined;

/** The process-wide cache (created on first use with config.sessionCacheSize). */
export function defaultGraphCache(config: InferenceConfig = defaultConfig.inference): SessionCache<CompiledGraph> {
  processCache ??= new SessionCache<CompiledGraph>(config.sessionCacheSize);
  return processCache;
}

/** Compiles (or fetches from the cache) the prompt for frames of width x height, warmed up. */
export async function compileGraph(prompt: ResolvedPrompt, opts: CompileOptions): Promise<CompiledGraph> {
  const config = opts.config ?? defaultConfig.inference;
  const log = (opts.logger ?? rootLogger).child({ promptId: prompt.id });
  const provider = await resolveProvider(opts.provider ?? config.provider, log);
  const cache = opts.cache ?? defaultGraphCache(config);
  // Everything a compiled graph depends on besides the prompt goes into the key.
  const fuse = opts.fuse ?? true;
  const bytes = fuse && (opts.bytes ?? true);
  const key = graphKey(prompt, { width: opts.width, height: opts.height, provider, workspace: opts.workspace, fuse: String(fuse), bytes: String(bytes), config: JSON.stringify(config) });
  const { value, hit } = await cache.acquire(key, async () => {
    const g = await build(prompt, { width: opts.width, height: opts.height }, provider, config, opts.workspace, fuse, bytes);
    try {
      await warmup(g, config.warmupFrames);
    } catch (err) {
      await g.release();
      throw err;
    }
    log.debug({ stages: g.stageKinds }, 'graph compiled');
    return g;
  });
  if (hit) log.debug('graph cache hit');
  value.onDispose = () => cache.release(key, value);
  return value;
}

/** 'cuda' when asked for and usable; otherwise CPU with a warning (a stream still runs, slower). */
async function resolveProvider(wanted: Provider, log: Logger): Promise<Provider> {
  if (wanted === 'cuda' && !(await cudaAvailable())) {
    log.warn('the CUDA execution provider cannot be loaded here (no provider library or no GPU); running on CPU');
    return 'cpu';
  }
  return wanted;
}

/** Synthetic frames (a moving gradient) run right after compiling, before the first real frame. */
async function warmup(g: CompiledGraph, frames: number): Promise<void> {
  const { width, height } = g.input;
  const rgb = new Uint8Array(width * height * 3);
  for (let f = 0; f < frames; f++) {
    for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 7 + f * 31) & 255;
    await g.run(rgb);
  }
}

function checkSize(s: Size, config: InferenceConfig, nodeId: string): Size {
  if (s.width < 1 || s.height < 1 || s.width > config.maxGraphSide || s.height > config.maxGraphSide) {
    throw new GraphError('GRAPH_BAD_INPUT', `node output ${s.width}x${s.height} is outside 1..${config.maxGraphSide}`, nodeId);
  }
  return s;
}

async function build(prompt: ResolvedPrompt, size: Size, provider: Provider, config: InferenceConfig, workspace: string, fuse: boolean, useBytes: boolean): Promise<CompiledGraph> {
  if (!Number.isInteger(size.width) || !Number.isInteger(size.height) || size.width < 1 || size.height < 1) {
    throw new GraphError('GRAPH_BAD_FRAME', `frame size ${size.width}x${size.height} is not a positive integer size`);
  }
  checkSize(size, config, prompt.inputNode);
  const options = sessionOptions(provider, config.intraOpThreads);
  const env: HostEnv = { workspace, config, sessionOptions: options };
  const ops = nodeOps(config);
  const stages: Stage[] = [];
  /** node id -> the stage that computes its IMAGE */
  const producer = new Map<string, Stage>();
  const sizes = new Map<string, Size>();
  let cur: SegmentStage | null = null;
  let outSize: Size | null = null;
  let outKey: string | null = null;
  let seenInput = false;

  const segment = (): SegmentStage => {
    if (cur) return cur;
    cur = { kind: 'onnx', g: new GraphBuilder(`prompt_${prompt.id}_${stages.length}`), local: new Map(), feeds: new Map(), inputOf: new Map(), exports: new Map() };
    stages.push(cur);
    return cur;
  };
  const imageLink = (node: ResolvedNode, name: string): string => {
    const v = node.inputs[name];
    if (v === undefined || !isLink(v)) throw new GraphError('GRAPH_BAD_LINK', `${node.classType} input "${name}" must link to an IMAGE`, node.id);
    if (v.slot !== 0 || !producer.has(v.node)) throw new GraphError('GRAPH_BAD_LINK', `${node.classType} input "${name}" links to [${v.node}, ${v.slot}], which is not an earlier IMAGE`, node.id);
    return v.node;
  };
  /** How a node's IMAGE can be had outside its stage: bytes (with their table) or float. */
  const carriedOf = (id: string): Carried => {
    const from = producer.get(id)!;
    if (from.kind === 'host') return from.step.output ?? FLOAT;
    const v = from.local.get(id)!;
    return v.bytes ? { kind: 'bytes', lut: v.bytes.lut } : FLOAT;
  };
  /** The value key that gives node `id`'s IMAGE in `repr` to a later stage; an onnx producer
   *  exports it (or passes on the input it read it from). */
  const keyFor = (id: string, repr: Repr): string => {
    const from = producer.get(id)!;
    if (from.kind === 'host') return from.outKey;
    const v = from.local.get(id)!;
    const name = repr === 'bytes' ? v.bytes!.name : v.name;
    const fed = from.feeds.get(name);
    if (fed) return fed;
    return exportFrom(from, valueKey(id, repr), { name, repr, width: v.width, height: v.height });
  };
  /** Node `id`'s IMAGE inside segment `seg`, read in from an earlier stage when it lives elsewhere.
   *  Bytes that are a stage's result as such (the frame, a host step's bytes) come in as bytes,
   *  their float path rebuilt here; bytes an earlier segment computes beside its float path come in
   *  both ways, and the model keeps the input it reads (the other is never exported). */
  const inSegment = (seg: SegmentStage, id: string): ImageValue => {
    const have = seg.local.get(id);
    if (have) return have;
    const s = sizes.get(id)!;
    const input = (repr: Repr): string => {
      const key = keyFor(id, repr);
      let name = seg.inputOf.get(key);
      if (!name) {
        name = key === FRAME ? FRAME : `in_${seg.feeds.size}`;
        seg.g.input(name, repr === 'bytes' ? 'uint8' : 'float32', repr === 'bytes' ? [s.height, s.width, 3] : [1, 3, s.height, s.width]);
        seg.feeds.set(name, key);
        seg.inputOf.set(key, name);
      }
      return name;
    };
    const carried = carriedOf(id);
    const from = producer.get(id)!;
    let v: ImageValue;
    if (carried.kind === 'float') v = { name: input('float'), ...s };
    else if (from.kind === 'host' || from.feeds.has(from.local.get(id)!.bytes!.name)) v = bytesToImage(seg.g, input('bytes'), carried.lut, s.width, s.height);
    else v = { name: input('float'), ...s, bytes: { name: input('bytes'), lut: carried.lut } };
    seg.local.set(id, v);
    return v;
  };
  /** A graph op's result keeps a byte form only if the op made it for this very float: an op
   *  that spread its input into a new value must not carry the input's bytes along. */
  const sane = (out: ImageValue, inputs: ImageValue[]): ImageValue => {
    if (!out.bytes || !useBytes) return out.bytes ? { name: out.name, width: out.width, height: out.height } : out;
    const stale = inputs.some((i) => i.bytes === out.bytes && i.name !== out.name);
    return stale ? { name: out.name, width: out.width, height: out.height } : out;
  };

  try {
    for (const node of prompt.nodes) {
      if (node.classType === INPUT_NODE) {
        if (seenInput) throw new GraphError('GRAPH_BAD_LINK', `a prompt takes one ${INPUT_NODE}`, node.id);
        seenInput = true;
        const seg = segment();
        const frame = seg.g.input(FRAME, 'uint8', [size.height, size.width, 3]);
        seg.feeds.set(FRAME, FRAME);
        seg.inputOf.set(FRAME, FRAME);
        seg.local.set(node.id, frameToImage(seg.g, frame, size.width, size.height, useBytes));
        producer.set(node.id, seg);
        sizes.set(node.id, size);
        if (!fuse) cur = null;
        continue;
      }
      if (node.classType === OUTPUT_NODE) {
        if (outSize) throw new GraphError('GRAPH_BAD_LINK', `a prompt has one ${OUTPUT_NODE}`, node.id);
        const src = imageLink(node, 'images');
        const s = sizes.get(src)!;
        outSize = { width: s.width, height: s.height };
        const carried = carriedOf(src);
        const from = producer.get(src)!;
        if (useBytes && carried.kind === 'bytes' && storesAsIs(carried.lut)) {
          // The bytes are the output frame: no conversion (and no session at all when they are
          // the frame itself or a host step's result).
          outKey = keyFor(src, 'bytes');
        } else {
          // Converted where the IMAGE is (the fused segment), or in a segment of its own after a
          // host step (and always in a segment of its own when not fusing).
          const seg = fuse && from.kind === 'onnx' ? from : segment();
          const img = inSegment(seg, src);
          const out = imageToFrame(seg.g, img);
          outKey = seg.feeds.get(out) ?? exportFrom(seg, FRAME_OUT, { name: out, repr: 'bytes', width: img.width, height: img.height });
        }
        producer.set(node.id, from);
        continue;
      }
      const op: NodeOp | undefined = ops[node.classType];
      if (!op) throw new GraphError('GRAPH_UNKNOWN_NODE', `node type ${node.classType} cannot be compiled`, node.id);
      const links = Object.fromEntries(op.imageInputs.map((n) => [n, imageLink(node, n)]));
      if (op.kind === 'graph') {
        const seg = segment();
        const images = Object.fromEntries(Object.entries(links).map(([n, id]) => [n, inSegment(seg, id)]));
        const out = sane(op.build(seg.g, node, images), Object.values(images));
        sizes.set(node.id, checkSize({ width: out.width, height: out.height }, config, node.id));
        seg.local.set(node.id, out);
        producer.set(node.id, seg);
        if (!fuse) cur = null;
      } else {
        // How each input reaches the step: bytes where the step takes them and they exist, else
        // float (a host step's bytes a float-only step needs are converted in a segment of their own).
        const inputs: Record<string, string> = {};
        const carried: Record<string, Carried> = {};
        for (const [n, id] of Object.entries(links)) {
          const c = carriedOf(id);
          if (useBytes && op.takesBytes && c.kind === 'bytes') {
            inputs[n] = keyFor(id, 'bytes');
            carried[n] = c;
          } else if (c.kind === 'bytes' && producer.get(id)!.kind === 'host') {
            const seg = segment();
            const v = inSegment(seg, id);
            inputs[n] = exportFrom(seg, valueKey(id, 'float'), { name: v.name, repr: 'float', width: v.width, height: v.height });
            carried[n] = FLOAT;
          } else {
            inputs[n] = keyFor(id, 'float');
            carried[n] = FLOAT;
          }
        }
        cur = null; // a host step ends the fused segment
        const inSizes = Object.fromEntries(Object.entries(links).map(([n, id]) => [n, sizes.get(id)!]));
        const step = await op.create(node, inSizes, env, carried);
        const out = step.output ?? FLOAT;
        const stage: HostStage = { kind: 'host', nodeId: node.id, inputs, step, outKey: valueKey(node.id, out.kind) };
        stages.push(stage);
        sizes.set(node.id, checkSize(step.size, config, node.id));
        producer.set(node.id, stage);
      }
    }
    if (!outSize || !outKey) throw new GraphError('GRAPH_BAD_LINK', `prompt ${prompt.id} has no ${OUTPUT_NODE}`);
    // Outputs are demanded, not pushed: from the last stage back, a segment exports only the values
    // the output, a host step or a later segment's model reads, and a segment nobody reads from
    // (everything it held was passed on as it came in) does not run at all.
    const needed = new Set<string>([outKey]);
    for (const s of stages) if (s.kind === 'host') for (const k of Object.values(s.inputs)) needed.add(k);
    for (let i = stages.length - 1; i >= 0; i--) {
      const s = stages[i];
      if (s.kind !== 'onnx') continue;
      const live = [...s.exports].filter(([key]) => needed.has(key));
      if (live.length === 0) {
        stages.splice(i, 1);
        continue;
      }
      s.outputs = new Map();
      for (const [key, e] of live) {
        s.g.output(e.name, e.repr === 'bytes' ? 'uint8' : 'float32', e.repr === 'bytes' ? [e.height, e.width, 3] : [1, 3, e.height, e.width]);
        s.outputs.set(e.name, key);
      }
      s.session = await createSession(s.g.toBytes(), options, provider);
      for (const name of s.session.inputNames) needed.add(s.feeds.get(name)!);
    }
  } catch (err) {
    for (const s of stages) {
      if (s.kind === 'onnx') await s.session?.release();
      else await s.step.release();
    }
    throw err;
  }
  return new CompiledGraph(prompt.id, size, outSize, provider, stages, outKey);
}

/** Makes `e` an output of `seg` under `key`; a tensor already exported (two nodes that are the
 *  same IMAGE, say an ImageBlur too wide to apply) keeps its first key, as outputs are unique. */
function exportFrom(seg: SegmentStage, key: string, e: { name: string; repr: Repr; width: number; height: number }): string {
  for (const [k, have] of seg.exports) if (have.name === e.name) return k;
  seg.exports.set(key, e);
  return key;
}

async function createSession(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions, provider: Provider): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (cause) {
    if (provider === 'cuda') throw new GraphError('GRAPH_PROVIDER_UNAVAILABLE', 'onnxruntime could not create a CUDA session', undefined, { cause });
    throw new GraphError('PROMPT_REJECTED', 'onnxruntime refused the compiled graph', undefined, { cause });
  }
}
