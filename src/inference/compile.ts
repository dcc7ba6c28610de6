// The graph compiler: a ResolvedPrompt becomes a FrameGraph. Consecutive graph ops are fused into
// one onnxruntime session (for the built-in image nodes that is the whole prompt: uint8 HWC frame
// in, conversions, every node, clamp + round, uint8 HWC frame out). Host ops (OnnxModel,
// TextRedact, ImageQuantize) split the chain: the fused segment before them exports the IMAGEs
// later stages need as float32 NCHW tensors, and the next segment takes them as inputs.
import ort from 'onnxruntime-node';
import { defaultConfig, type InferenceConfig } from '../config.ts';
import { rootLogger, type Logger } from '../log.ts';
import { GraphBuilder } from './onnx/builder.ts';
import { frameToImage, imageToFrame, type ImageValue } from './onnx/image.ts';
import { GraphError } from './ops/errors.ts';
import { INPUT_NODE, nodeOps, OUTPUT_NODE } from './ops/index.ts';
import type { HostEnv, HostStep, NodeOp, Size } from './ops/types.ts';
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
  /** false: one session per node (the unfused baseline the benchmark compares against). Default true. */
  fuse?: boolean;
}

const FRAME = 'frame';
const FRAME_OUT = 'frame_out';

interface SegmentStage {
  kind: 'onnx';
  g: GraphBuilder;
  /** node id -> tensor name in this segment */
  local: Map<string, ImageValue>;
  /** graph input name -> node id it carries (from an earlier stage) */
  feeds: Map<string, string>;
  /** node ids later stages read from this segment */
  exports: Set<string>;
  takesFrame: boolean;
  final: boolean;
  session?: ort.InferenceSession;
  /** output name -> node id (or FRAME_OUT) */
  outputs?: Map<string, string>;
}

interface HostStage {
  kind: 'host';
  nodeId: string;
  inputs: Record<string, string>;
  step: HostStep;
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
  ) {
    this.width = input.width;
    this.height = input.height;
  }

  /** Stages run per frame: fused ONNX sessions plus host steps (1 when the whole prompt fused). */
  get stageCount(): number {
    return this.stages.length;
  }

  /** The stages, for inspection: 'onnx' (fused segment) or the host node's id. */
  get stageKinds(): string[] {
    return this.stages.map((s) => (s.kind === 'onnx' ? 'onnx' : `host:${s.nodeId}`));
  }

  /** Runs one RGB24 frame. Calls are served in order, one at a time. */
  run(rgb: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }> {
    const next = this.queue.then(() => this.runNow(rgb));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(rgb: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }> {
    if (this.released) throw new GraphError('disposed', `graph ${this.promptId} was disposed`);
    const { width, height } = this.input;
    if (!(rgb instanceof Uint8Array) || rgb.length !== width * height * 3) {
      throw new GraphError('bad_frame', `frame must be ${width}x${height} RGB24 (${width * height * 3} bytes), got ${rgb?.length ?? 'none'}`);
    }
    const values = new Map<string, ort.Tensor>();
    values.set(FRAME, new ort.Tensor('uint8', rgb, [height, width, 3]));
    for (const s of this.stages) {
      try {
        if (s.kind === 'onnx') {
          const feeds: Record<string, ort.Tensor> = {};
          if (s.takesFrame) feeds[FRAME] = values.get(FRAME)!;
          for (const [name, id] of s.feeds) feeds[name] = values.get(id)!;
          const out = await s.session!.run(feeds);
          for (const [name, id] of s.outputs!) values.set(id, out[name]);
        } else {
          const inputs: Record<string, ort.Tensor> = {};
          for (const [name, id] of Object.entries(s.inputs)) inputs[name] = values.get(id)!;
          values.set(s.nodeId, await s.step.run(inputs));
        }
      } catch (cause) {
        if (cause instanceof GraphError) throw cause;
        throw new GraphError('run_failed', `graph ${this.promptId} failed in stage ${s.kind === 'onnx' ? 'onnx' : s.nodeId}`, s.kind === 'host' ? s.nodeId : undefined, { cause });
      }
    }
    const out = values.get(FRAME_OUT)!;
    return { data: out.data as Uint8Array, width: this.output.width, height: this.output.height };
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
  const key = graphKey(prompt, { width: opts.width, height: opts.height, provider, workspace: opts.workspace, fuse: String(opts.fuse ?? true), config: JSON.stringify(config) });
  const { value, hit } = await cache.acquire(key, async () => {
    const g = await build(prompt, { width: opts.width, height: opts.height }, provider, config, opts.workspace, opts.fuse ?? true);
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
    throw new GraphError('bad_input', `node output ${s.width}x${s.height} is outside 1..${config.maxGraphSide}`, nodeId);
  }
  return s;
}

async function build(prompt: ResolvedPrompt, size: Size, provider: Provider, config: InferenceConfig, workspace: string, fuse: boolean): Promise<CompiledGraph> {
  if (!Number.isInteger(size.width) || !Number.isInteger(size.height) || size.width < 1 || size.height < 1) {
    throw new GraphError('bad_frame', `frame size ${size.width}x${size.height} is not a positive integer size`);
  }
  checkSize(size, config, prompt.inputNode);
  const options = sessionOptions(provider, config.intraOpThreads);
  const env: HostEnv = { workspace, config, sessionOptions: options };
  const ops = nodeOps(config);
  const stages: Stage[] = [];
  const producer = new Map<string, Stage>();
  const sizes = new Map<string, Size>();
  let cur: SegmentStage | null = null;
  let outSize: Size | null = null;
  let seenInput = false;

  const segment = (): SegmentStage => {
    if (cur) return cur;
    cur = { kind: 'onnx', g: new GraphBuilder(`prompt_${prompt.id}_${stages.length}`), local: new Map(), feeds: new Map(), exports: new Set(), takesFrame: false, final: false };
    stages.push(cur);
    return cur;
  };
  const imageLink = (node: ResolvedNode, name: string): string => {
    const v = node.inputs[name];
    if (v === undefined || !isLink(v)) throw new GraphError('bad_link', `${node.classType} input "${name}" must link to an IMAGE`, node.id);
    if (v.slot !== 0 || !producer.has(v.node)) throw new GraphError('bad_link', `${node.classType} input "${name}" links to [${v.node}, ${v.slot}], which is not an earlier IMAGE`, node.id);
    return v.node;
  };
  const inSegment = (seg: SegmentStage, id: string): ImageValue => {
    const have = seg.local.get(id);
    if (have) return have;
    const s = sizes.get(id)!;
    const name = seg.g.input(`in_${seg.feeds.size}`, 'float32', [1, 3, s.height, s.width]);
    seg.feeds.set(name, id);
    const from = producer.get(id)!;
    if (from.kind === 'onnx') from.exports.add(id);
    const v = { name, ...s };
    seg.local.set(id, v);
    return v;
  };

  try {
    for (const node of prompt.nodes) {
      if (node.classType === INPUT_NODE) {
        if (seenInput) throw new GraphError('bad_link', `a prompt takes one ${INPUT_NODE}`, node.id);
        seenInput = true;
        const seg = segment();
        seg.takesFrame = true;
        const frame = seg.g.input(FRAME, 'uint8', [size.height, size.width, 3]);
        seg.local.set(node.id, frameToImage(seg.g, frame, size.width, size.height));
        producer.set(node.id, seg);
        sizes.set(node.id, size);
        if (!fuse) cur = null;
        continue;
      }
      if (node.classType === OUTPUT_NODE) {
        if (outSize) throw new GraphError('bad_link', `a prompt has one ${OUTPUT_NODE}`, node.id);
        const src = imageLink(node, 'images');
        const seg = segment();
        const img = inSegment(seg, src);
        const out = imageToFrame(seg.g, img);
        seg.g.output(out, 'uint8', [img.height, img.width, 3]);
        seg.final = true;
        seg.outputs = new Map([[out, FRAME_OUT]]);
        outSize = { width: img.width, height: img.height };
        producer.set(node.id, seg);
        continue;
      }
      const op: NodeOp | undefined = ops[node.classType];
      if (!op) throw new GraphError('unknown_node', `node type ${node.classType} cannot be compiled`, node.id);
      const links = Object.fromEntries(op.imageInputs.map((n) => [n, imageLink(node, n)]));
      if (op.kind === 'graph') {
        const seg = segment();
        const images = Object.fromEntries(Object.entries(links).map(([n, id]) => [n, inSegment(seg, id)]));
        const out = op.build(seg.g, node, images);
        sizes.set(node.id, checkSize({ width: out.width, height: out.height }, config, node.id));
        seg.local.set(node.id, out);
        producer.set(node.id, seg);
        if (!fuse) cur = null;
      } else {
        cur = null; // a host step ends the fused segment
        for (const id of Object.values(links)) {
          const from = producer.get(id)!;
          if (from.kind === 'onnx') from.exports.add(id);
        }
        const inSizes = Object.fromEntries(Object.entries(links).map(([n, id]) => [n, sizes.get(id)!]));
        const stage: HostStage = { kind: 'host', nodeId: node.id, inputs: links, step: await op.create(node, inSizes, env) };
        stages.push(stage);
        sizes.set(node.id, checkSize(stage.step.size, config, node.id));
        producer.set(node.id, stage);
      }
    }
    if (!outSize) throw new GraphError('bad_link', `prompt ${prompt.id} has no ${OUTPUT_NODE}`);
    for (const s of stages) {
      if (s.kind !== 'onnx') continue;
      s.outputs ??= new Map();
      for (const id of s.exports) {
        const v = s.local.get(id)!;
        // A graph output may not be a graph input of the same graph: pass it through Identity.
        const name = s.feeds.has(v.name) || v.name === FRAME ? s.g.op1('Identity', [v.name]) : v.name;
        s.g.output(name, 'float32', [1, 3, v.height, v.width]);
        s.outputs.set(name, id);
      }
      s.session = await createSession(s.g.toBytes(), options, provider);
    }
  } catch (err) {
    for (const s of stages) {
      if (s.kind === 'onnx') await s.session?.release();
      else await s.step.release();
    }
    throw err;
  }
  return new CompiledGraph(prompt.id, size, outSize, provider, stages);
}

async function createSession(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions, provider: Provider): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (cause) {
    if (provider === 'cuda') throw new GraphError('provider_unavailable', 'onnxruntime could not create a CUDA session', undefined, { cause });
    throw new GraphError('compile_failed', 'onnxruntime refused the compiled graph', undefined, { cause });
  }
}
