// OnnxModel (image, model_name): runs a workspace model on the image as its own session, chained
// in the same FrameGraph.run. Contract for such models: one input, float32 NCHW [1,3,H,W] RGB in
// 0..1; one output, float32 [1,3,H',W'] in 0..1 (usually H' = H, W' = W). The output size is
// learnt by a probe run at compile time, so the nodes after it are built for the right size.
// It stays a separate session because a foreign model carries its own opset and initializers;
// inlining it would mean re-targeting every op to ours.
import { existsSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { modelPath } from '../workspace.ts';
import { GraphError } from './errors.ts';
import { stringInput, type HostOp } from './types.ts';

export const onnxModel: HostOp = {
  kind: 'host',
  imageInputs: ['image'],
  async create(node, sizes, env) {
    const name = stringInput(node, 'model_name');
    if (!/^[A-Za-z0-9._-]+\.onnx$/.test(name) || name.startsWith('.')) throw new GraphError('GRAPH_MISSING_MODEL', `model name ${JSON.stringify(name)} is not a .onnx file name`, node.id);
    const file = modelPath(env.workspace, name);
    if (!existsSync(file)) throw new GraphError('GRAPH_MISSING_MODEL', `model ${name} is not in the workspace`, node.id);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, env.sessionOptions);
    } catch (cause) {
      throw new GraphError('GRAPH_MISSING_MODEL', `model ${name} cannot be loaded`, node.id, { cause });
    }
    const { width, height } = sizes.image;
    const input = session.inputNames[0];
    const output = session.outputNames[0];
    const run = async (t: ort.Tensor): Promise<ort.Tensor> => {
      const r = await session.run({ [input]: t });
      return r[output];
    };
    let probe: ort.Tensor;
    try {
      probe = await run(new ort.Tensor('float32', new Float32Array(3 * width * height), [1, 3, height, width]));
    } catch (cause) {
      await session.release();
      throw new GraphError('GRAPH_MODEL_SHAPE', `model ${name} does not take float32 [1,3,${height},${width}]`, node.id, { cause });
    }
    const d = probe.dims;
    if (probe.type !== 'float32' || d.length !== 4 || d[0] !== 1 || d[1] !== 3) {
      await session.release();
      throw new GraphError('GRAPH_MODEL_SHAPE', `model ${name} must return float32 [1,3,H,W], returned ${probe.type} [${d.join(',')}]`, node.id);
    }
    return {
      size: { width: d[3], height: d[2] },
      run: ({ image }) => run(image),
      release: () => session.release(),
    };
  },
};
