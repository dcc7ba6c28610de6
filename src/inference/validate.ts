// ComfyUI-compatible prompt validation (execution.py validate_prompt / validate_inputs), after
// ComfyStream's normalisation, plus the rules a per-frame stream graph needs. The answer has ComfyUI's
// shape ({error, node_errors}) and the flattened `validation_errors` the API returns; on success it is
// the ResolvedPrompt the graph compiler consumes. Never throws, whatever JSON comes in.
//
// Where ComfyUI has no answer (it would crash or accept something that cannot run), we answer with the
// nearest ComfyUI type:
// - a link to a node id that is not in the prompt, or to an output slot the source node does not have:
//   `bad_linked_input` (details `<input>, node '<id>' does not exist` / `<input>, output slot <n> out of
//   range for <class>`);
// - a literal where an IMAGE link is needed: `invalid_input_type` (`Failed to convert an input value to a
//   IMAGE value`);
// - a FLOAT that is NaN (ComfyUI's float('nan') slips past its range checks): `invalid_input_type`;
// - a cycle among the output's dependencies: `dependency_cycle` on every node of the cycle (ComfyUI
//   finds these only at execution time);
// - prompt-level refusals (not JSON, wrong shape, too many nodes, ComfyStream's input/output rules, a
//   graph that cannot run per frame): `invalid_prompt` with the message naming the rule.
import { defaultConfig } from '../config.ts';
import type { LinkRef, ResolvedNode, ResolvedPrompt, ResolvedValue } from './types.ts';
import { INPUT_CLASS, OUTPUT_CLASS, type InputSpec, type InputType, type NodeDef } from './nodes.ts';
import { createRegistry, declaredInputs, typesCompatible, type NodeRegistry } from './registry.ts';
import {
  canonicalPrompt,
  normalizePrompt,
  parsePrompt,
  PromptFormatError,
  promptId as idOf,
  type ApiPrompt,
} from './prompt.ts';

/** One ComfyUI error: `{type, message, details, extra_info}`. */
export interface ComfyError {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

/** ComfyUI's node_errors entry. */
export interface NodeErrors {
  errors: ComfyError[];
  dependent_outputs: string[];
  class_type: string;
}

/** The API's flattened error (one per node error, or one for a prompt-level error with node_id null). */
export interface FlatError {
  node_id: string | null;
  node_type: string | null;
  error_type: string;
  message: string;
  details: string;
  input_name: string | null;
  received_value: unknown;
  /** The combo's options for value_not_in_list; [] otherwise. */
  valid_options: unknown[];
}

export interface ValidationSuccess {
  valid: true;
  prompt: ResolvedPrompt;
  promptId: string;
}

export interface ValidationFailure {
  valid: false;
  error: ComfyError;
  node_errors: Record<string, NodeErrors>;
  validation_errors: FlatError[];
}

export type ValidationResult = ValidationSuccess | ValidationFailure;

export interface ValidateOptions {
  /** Workspace whose models/ fills the OnnxModel combo. */
  workspace: string;
  /** Most nodes one prompt may hold (default inference.maxPromptNodes). */
  maxNodes?: number;
  /** A registry to reuse (default: built from `workspace` on each call). */
  registry?: NodeRegistry;
  /** Without `registry`: include the test-only classes (config `inference.testNodes`). Default false. */
  testNodes?: boolean;
  /** Apply ComfyStream's input/output normalisation first (default true). */
  normalize?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Python-style text, so messages and details read exactly as ComfyUI's f-strings would.

function pyFloat(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0';
  // toExponential() without an argument gives the shortest round-trip digits, as Python's repr does.
  const [mant, expText] = Math.abs(n).toExponential().split('e');
  const exp = Number(expText);
  const sign = n < 0 ? '-' : '';
  if (exp < -4 || exp >= 16) return `${sign}${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  const digits = mant.replace('.', '');
  let int: string;
  let frac: string;
  if (exp >= 0) {
    int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    frac = digits.slice(exp + 1);
  } else {
    int = '0';
    frac = '0'.repeat(-exp - 1) + digits;
  }
  return `${sign}${int}.${frac || '0'}`;
}

function pyInt(n: number): string {
  return Number.isFinite(n) ? BigInt(Math.trunc(n)).toString() : pyFloat(n);
}

function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f) out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return quote + out + quote;
}

/** Python repr() of a JSON value. */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return Number.isInteger(v) ? pyInt(v) : pyFloat(v);
  if (typeof v === 'string') return pyStrRepr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`)
      .join(', ')}}`;
  }
  return String(v);
}

/** Python str() of a JSON value. */
export function pyStr(v: unknown): string {
  return typeof v === 'string' ? v : pyRepr(v);
}

function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return 'list';
  return 'dict';
}

/** A number formatted as Python would print it when declared with this input type. */
function pyNumber(n: number, type: InputType): string {
  return type === 'FLOAT' ? pyFloat(n) : Number.isInteger(n) ? pyInt(n) : pyFloat(n);
}

// ---------------------------------------------------------------------------------------------
// Literal coercion: ComfyUI's int()/float()/str()/bool() on the received value.

type Coerced = { ok: true; value: number | string | boolean; text: string } | { ok: false; message: string };

const INT_TEXT = /^\s*[+-]?\d(?:_?\d)*\s*$/;
const FLOAT_TEXT = /^\s*[+-]?(?:(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?|inf|infinity|nan)\s*$/i;

function toInt(v: unknown): Coerced {
  if (typeof v === 'boolean') return { ok: true, value: v ? 1 : 0, text: v ? '1' : '0' };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return { ok: false, message: 'cannot convert float infinity to integer' };
    const n = Math.trunc(v) + 0; // + 0 turns -0 into 0
    return { ok: true, value: n, text: pyInt(n) };
  }
  if (typeof v === 'string') {
    if (!INT_TEXT.test(v)) return { ok: false, message: `invalid literal for int() with base 10: ${pyStrRepr(v)}` };
    const big = BigInt(v.trim().replace(/_/g, ''));
    return { ok: true, value: Number(big), text: big.toString() };
  }
  return { ok: false, message: `int() argument must be a string, a bytes-like object or a real number, not '${pyTypeName(v)}'` };
}

function toFloat(v: unknown): Coerced {
  if (typeof v === 'boolean') return { ok: true, value: v ? 1 : 0, text: v ? '1.0' : '0.0' };
  if (typeof v === 'number') return { ok: true, value: v, text: pyFloat(v) };
  if (typeof v === 'string') {
    if (!FLOAT_TEXT.test(v)) return { ok: false, message: `could not convert string to float: ${pyStrRepr(v)}` };
    const t = v.trim().replace(/_/g, '').toLowerCase();
    const body = t.replace(/^[+-]/, '');
    const neg = t.startsWith('-');
    let n: number;
    if (body === 'inf' || body === 'infinity') n = neg ? -Infinity : Infinity;
    else if (body === 'nan') n = NaN;
    else n = Number(t);
    return { ok: true, value: n, text: pyFloat(n) };
  }
  return { ok: false, message: `float() argument must be a string or a real number, not '${pyTypeName(v)}'` };
}

/** Python's bool(): truthiness, so the string "false" is True, exactly as ComfyUI coerces it. */
function toBool(v: unknown): Coerced {
  let b: boolean;
  if (v === null || v === undefined) b = false;
  else if (typeof v === 'boolean') b = v;
  else if (typeof v === 'number') b = v !== 0;
  else if (typeof v === 'string') b = v.length > 0;
  else if (Array.isArray(v)) b = v.length > 0;
  else b = Object.keys(v as object).length > 0;
  return { ok: true, value: b, text: b ? 'True' : 'False' };
}

const SCALAR_TYPES = new Set(['INT', 'FLOAT', 'STRING', 'BOOLEAN']);

function isLiteralList(v: unknown): v is { __value__: unknown[] } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Array.isArray((v as { __value__?: unknown }).__value__);
}

// ---------------------------------------------------------------------------------------------

function promptError(message: string, details = '', extra_info: Record<string, unknown> = {}): ComfyError {
  return { type: 'invalid_prompt', message, details, extra_info };
}

function fail(error: ComfyError, nodeErrors: Array<[string, NodeErrors]> = [], flat?: FlatError[]): ValidationFailure {
  const validation_errors =
    flat ??
    [
      {
        node_id: null,
        node_type: null,
        error_type: error.type,
        message: error.message,
        details: error.details,
        input_name: null,
        received_value: null,
        valid_options: [],
      },
    ];
  return { valid: false, error, node_errors: Object.fromEntries(nodeErrors), validation_errors };
}

function inputConfig(spec: InputSpec): unknown[] {
  return [spec[0], spec[1] ?? {}];
}

interface NodeCheck {
  errors: ComfyError[];
  /** Source node ids of links that passed their checks (ComfyUI validates only those further). */
  follow: string[];
  inputs: Record<string, ResolvedValue>;
}

/** validate_inputs for one node, without recursion (the caller walks the followed links). */
function checkNode(prompt: ApiPrompt, id: string, def: NodeDef, registry: NodeRegistry): NodeCheck {
  const node = prompt[id];
  const given = node.inputs ?? {};
  const errors: ComfyError[] = [];
  const follow: string[] = [];
  const inputs: Record<string, ResolvedValue> = {};

  for (const input of declaredInputs(def)) {
    const x = input.name;
    const type = input.type;
    const opts = input.spec[1] ?? {};
    const info = inputConfig(input.spec);
    if (!Object.hasOwn(given, x)) {
      if (input.category === 'required') {
        errors.push({ type: 'required_input_missing', message: 'Required input is missing', details: x, extra_info: { input_name: x } });
      } else if (opts.default !== undefined) {
        inputs[x] = opts.default;
      }
      continue;
    }
    const val = given[x];

    if (Array.isArray(val)) {
      const bad = (details: string): void => {
        errors.push({
          type: 'bad_linked_input',
          message: 'Bad linked input, must be a length-2 list of [node_id, slot_index]',
          details,
          extra_info: { input_name: x, input_config: info, received_value: val },
        });
      };
      if (val.length !== 2) {
        bad(x);
        continue;
      }
      const [src, slot] = val as [unknown, unknown];
      if (typeof src !== 'string' || !Object.hasOwn(prompt, src)) {
        bad(`${x}, node ${pyRepr(src)} does not exist`);
        continue;
      }
      const srcClass = prompt[src].class_type;
      const srcDef = registry.get(srcClass);
      if (!srcDef) {
        bad(`${x}, node ${pyRepr(src)} does not exist`);
        continue;
      }
      if (typeof slot !== 'number' || !Number.isInteger(slot) || slot < 0 || slot >= srcDef.RETURN_TYPES.length) {
        bad(`${x}, output slot ${pyRepr(slot)} out of range for ${srcClass}`);
        continue;
      }
      const received = srcDef.RETURN_TYPES[slot];
      if (!typesCompatible(received, type)) {
        errors.push({
          type: 'return_type_mismatch',
          message: 'Return type mismatch between linked nodes',
          details: `${x}, ${received} != ${pyStr(type)}`,
          extra_info: { input_name: x, input_config: info, received_type: received, linked_node: val },
        });
        continue;
      }
      follow.push(src);
      inputs[x] = { node: src, slot } satisfies LinkRef;
      continue;
    }

    const invalidType = (typeName: string, received: unknown, message: string): void => {
      errors.push({
        type: 'invalid_input_type',
        message: `Failed to convert an input value to a ${typeName} value`,
        details: `${x}, ${pyStr(received)}, ${message}`,
        extra_info: { input_name: x, input_config: info, received_value: received, exception_message: message },
      });
    };

    let value: ResolvedValue;
    let text: string;
    if (typeof type === 'string' && SCALAR_TYPES.has(type)) {
      const c =
        type === 'INT' ? toInt(val) : type === 'FLOAT' ? toFloat(val) : type === 'BOOLEAN' ? toBool(val) : ({ ok: true, value: pyStr(val), text: pyStr(val) } as Coerced);
      if (!c.ok) {
        invalidType(type, val, c.message);
        continue;
      }
      value = c.value;
      text = c.text;
    } else if (typeof type === 'string' && !type.split(',').some((t) => t.trim() === '*')) {
      // IMAGE and other tensor types only come through links: a literal could never run.
      invalidType(type, val, `${type} inputs take a link [node_id, slot_index], not a literal`);
      continue;
    } else {
      value = isLiteralList(val) ? val.__value__ : (val as ResolvedValue);
      text = pyStr(val);
    }

    if (typeof value === 'number') {
      const bound =
        opts.min !== undefined && value < opts.min
          ? { side: 'smaller', of: 'min', limit: opts.min }
          : opts.max !== undefined && value > opts.max
            ? { side: 'bigger', of: 'max', limit: opts.max }
            : undefined;
      if (bound) {
        errors.push({
          type: `value_${bound.side}_than_${bound.of}`,
          message: `Value ${text} ${bound.side} than ${bound.of} of ${pyNumber(bound.limit, type)}`,
          details: x,
          extra_info: { input_name: x, input_config: info, received_value: value },
        });
        continue;
      }
      if (!Number.isFinite(value)) {
        invalidType(pyStr(type), val, `${text} is not a finite number`);
        continue;
      }
    }

    if (typeof type !== 'string') {
      if (!type.includes(value as string)) {
        const big = type.length > 20;
        errors.push({
          type: 'value_not_in_list',
          message: 'Value not in list',
          details: `${x}: '${pyStr(val)}' not in ${big ? `(list of length ${type.length})` : pyRepr(type)}`,
          extra_info: { input_name: x, input_config: big ? null : info, received_value: val },
        });
        continue;
      }
    }
    inputs[x] = value;
  }
  return { errors, follow, inputs };
}

/** Nodes on a cycle (strongly connected components of size > 1, or self-links), by iterative Tarjan. */
function cycleNodes(nodes: string[], edges: Map<string, string[]>): Set<string> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out = new Set<string>();
  let counter = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: Array<{ v: string; i: number }> = [{ v: root, i: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length) {
      const frame = work[work.length - 1];
      const next = edges.get(frame.v) ?? [];
      if (frame.i < next.length) {
        const w = next[frame.i++];
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.v, Math.min(low.get(frame.v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1].v;
        low.set(parent, Math.min(low.get(parent)!, low.get(frame.v)!));
      }
      if (low.get(frame.v) === index.get(frame.v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== frame.v);
        if (scc.length > 1 || next.includes(frame.v)) for (const s of scc) out.add(s);
      }
    }
  }
  return out;
}

/** Dependencies-first order of the nodes reachable from `root` (the graph is known to be acyclic). */
function topoOrder(root: string, edges: Map<string, string[]>): string[] {
  const order: string[] = [];
  const done = new Set<string>();
  const work: Array<{ v: string; i: number }> = [{ v: root, i: 0 }];
  const entered = new Set<string>([root]);
  while (work.length) {
    const frame = work[work.length - 1];
    const next = edges.get(frame.v) ?? [];
    if (frame.i < next.length) {
      const w = next[frame.i++];
      if (!entered.has(w)) {
        entered.add(w);
        work.push({ v: w, i: 0 });
      }
      continue;
    }
    work.pop();
    if (!done.has(frame.v)) {
      done.add(frame.v);
      order.push(frame.v);
    }
  }
  return order;
}

function flatten(entries: Array<[string, NodeErrors]>, registry: NodeRegistry): FlatError[] {
  const flat: FlatError[] = [];
  for (const [id, entry] of entries) {
    const def = registry.get(entry.class_type);
    for (const e of entry.errors) {
      const inputName = typeof e.extra_info.input_name === 'string' ? e.extra_info.input_name : null;
      let options: unknown[] = [];
      if (e.type === 'value_not_in_list' && def && inputName) {
        const spec = def.INPUT_TYPES.required?.[inputName] ?? def.INPUT_TYPES.optional?.[inputName];
        if (spec && typeof spec[0] !== 'string') options = [...spec[0]];
      }
      flat.push({
        node_id: id,
        node_type: entry.class_type,
        error_type: e.type,
        message: e.message,
        details: e.details,
        input_name: inputName,
        received_value: 'received_value' in e.extra_info ? e.extra_info.received_value : null,
        valid_options: options,
      });
    }
  }
  return flat;
}

function validateUnsafe(input: unknown, opts: ValidateOptions): ValidationResult {
  const maxNodes = opts.maxNodes ?? defaultConfig.inference.maxPromptNodes;
  const registry = opts.registry ?? createRegistry(opts.workspace, { testNodes: opts.testNodes });

  if (Array.isArray(input)) {
    return fail(promptError('Expected one prompt, got a list', `a list of ${input.length} prompts; validate each`));
  }
  let raw;
  try {
    raw = parsePrompt(input);
  } catch (err) {
    if (err instanceof PromptFormatError) return fail(promptError(err.message, err.details, { code: err.code }));
    throw err;
  }

  const ids = Object.keys(raw);
  if (ids.length > maxNodes) {
    return fail(
      promptError('Prompt has too many nodes', `${ids.length} nodes; the limit is ${maxNodes} (inference.maxPromptNodes)`, {
        code: 'too_many_nodes',
        node_count: ids.length,
        max_nodes: maxNodes,
      }),
    );
  }

  // ComfyUI's first pass: every node needs a class_type (checked before normalisation, which reads it).
  for (const id of ids) {
    const node = raw[id];
    if (node.class_type === undefined) {
      return fail(promptError('Cannot execute because a node is missing the class_type property.', `Node ID '#${id}'`));
    }
    if (typeof node.class_type !== 'string') {
      return fail(promptError(`Cannot execute because node ${pyStr(node.class_type)} does not exist.`, `Node ID '#${id}'`));
    }
  }
  let prompt = raw as ApiPrompt;
  for (const id of ids) if (prompt[id].inputs === undefined) prompt[id] = { ...prompt[id], inputs: {} };

  if (opts.normalize ?? true) {
    try {
      prompt = normalizePrompt(prompt);
    } catch (err) {
      if (err instanceof PromptFormatError) return fail(promptError(err.message, err.details, { code: err.code }));
      throw err;
    }
  }

  const outputs: string[] = [];
  for (const id of ids) {
    const classType = prompt[id].class_type;
    const def = registry.get(classType);
    if (!def) return fail(promptError(`Cannot execute because node ${classType} does not exist.`, `Node ID '#${id}'`));
    if (def.OUTPUT_NODE === true) outputs.push(id);
  }
  if (outputs.length === 0) {
    return fail({ type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} });
  }

  // Walk each output's dependencies through the links that passed their checks, as ComfyUI recurses.
  const checks = new Map<string, NodeCheck>();
  const nodeErrors: Array<[string, NodeErrors]> = [];
  const errorIndex = new Map<string, NodeErrors>();
  const failedOutputs: Array<[string, ComfyError[]]> = [];
  const edges = new Map<string, string[]>();
  for (const out of outputs) {
    const reached: string[] = [];
    const queue = [out];
    const seen = new Set<string>([out]);
    for (let head = 0; head < queue.length; head++) {
      const id = queue[head];
      reached.push(id);
      let check = checks.get(id);
      if (!check) {
        check = checkNode(prompt, id, registry.get(prompt[id].class_type)!, registry);
        checks.set(id, check);
        edges.set(id, check.follow);
      }
      for (const src of check.follow) {
        if (!seen.has(src)) {
          seen.add(src);
          queue.push(src);
        }
      }
    }
    const cyclic = cycleNodes(reached, edges);
    const cycleDetails = `nodes ${reached.filter((r) => cyclic.has(r)).join(', ')}`;
    let ok = true;
    for (const id of reached) {
      const errs = [...checks.get(id)!.errors];
      if (cyclic.has(id)) {
        errs.push({ type: 'dependency_cycle', message: 'Dependency cycle detected', details: cycleDetails, extra_info: {} });
      }
      if (errs.length === 0) continue;
      ok = false;
      let entry = errorIndex.get(id);
      if (!entry) {
        entry = { errors: errs, dependent_outputs: [], class_type: prompt[id].class_type };
        errorIndex.set(id, entry);
        nodeErrors.push([id, entry]);
      }
      entry.dependent_outputs.push(out);
    }
    if (!ok) failedOutputs.push([out, errorIndex.get(out)?.errors ?? []]);
  }

  if (failedOutputs.length > 0) {
    // ComfyUI: details list the failing outputs' own errors; node_errors hold every node's.
    const details = failedOutputs.flatMap(([, errs]) => errs.map((e) => `${e.message}: ${e.details}`)).join('\n');
    return fail(
      { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details, extra_info: {} },
      nodeErrors,
      flatten(nodeErrors, registry),
    );
  }

  // A stream runs one graph per frame: one frame in, one frame out.
  if (outputs.length !== 1) {
    return fail(
      promptError(
        `A stream graph needs exactly one ${OUTPUT_CLASS} output; this prompt has ${outputs.length}`,
        `outputs: ${outputs.join(', ')}`,
        { code: 'not_streamable', output_nodes: outputs },
      ),
    );
  }
  const outputNode = outputs[0];
  const order = topoOrder(outputNode, edges);
  const inputsUsed = order.filter((id) => prompt[id].class_type === INPUT_CLASS);
  if (inputsUsed.length !== 1) {
    return fail(
      promptError(
        `A stream graph needs exactly one ${INPUT_CLASS} input feeding its output; this one reads ${inputsUsed.length}`,
        `inputs: ${inputsUsed.join(', ')}`,
        { code: 'not_streamable', input_nodes: inputsUsed },
      ),
    );
  }

  const nodes: ResolvedNode[] = order.map((id) => ({ id, classType: prompt[id].class_type, inputs: checks.get(id)!.inputs }));
  const id = idOf(canonicalPrompt(prompt));
  return { valid: true, prompt: { id, nodes, inputNode: inputsUsed[0], outputNode }, promptId: id };
}

/**
 * Validates one prompt (object or JSON string) against the workspace's nodes. Never throws: any
 * failure, including an unexpected one, comes back as `{valid: false, ...}`.
 */
export function validatePrompt(input: unknown, opts: ValidateOptions): ValidationResult {
  try {
    return validateUnsafe(input, opts);
  } catch (err) {
    return fail({
      type: 'exception_during_validation',
      message: 'Exception when validating node',
      details: err instanceof Error ? err.message : String(err),
      extra_info: { exception_type: err instanceof Error ? err.name : typeof err },
    });
  }
}

export interface ValidatePromptsOptions extends ValidateOptions {
  /** Most prompts one request may carry (default inference.maxPrompts). */
  maxPrompts?: number;
}

export interface PromptsSuccess {
  valid: true;
  prompts: Array<{ prompt: ResolvedPrompt; promptId: string }>;
}

export interface PromptsFailure {
  valid: false;
  /** The first failing prompt's error, its message prefixed with `Prompt <index>: `. */
  error: ComfyError;
  /** Each failing prompt's own result. */
  failures: Array<{ index: number; result: ValidationFailure }>;
  /** Every flattened error, tagged with the index of its prompt. */
  validation_errors: Array<FlatError & { prompt_index: number | null }>;
}

export type PromptsResult = PromptsSuccess | PromptsFailure;

/** Validates a list of prompts (or one prompt, as a list of one); every prompt must pass. */
export function validatePrompts(input: unknown, opts: ValidatePromptsOptions): PromptsResult {
  const maxPrompts = opts.maxPrompts ?? defaultConfig.inference.maxPrompts;
  const listFail = (message: string, details: string, extra: Record<string, unknown>): PromptsFailure => {
    const error = promptError(message, details, extra);
    return {
      valid: false,
      error,
      failures: [],
      validation_errors: [{ ...fail(error).validation_errors[0], prompt_index: null }],
    };
  };
  let list: unknown[];
  if (typeof input === 'string') {
    try {
      const parsed: unknown = JSON.parse(input);
      list = Array.isArray(parsed) ? parsed : [input];
    } catch {
      list = [input];
    }
  } else list = Array.isArray(input) ? input : [input];
  if (list.length === 0) return listFail('No prompts given', 'the list of prompts is empty', { code: 'no_prompts' });
  if (list.length > maxPrompts) {
    return listFail('Too many prompts', `${list.length} prompts; the limit is ${maxPrompts} (inference.maxPrompts)`, {
      code: 'too_many_prompts',
      prompt_count: list.length,
      max_prompts: maxPrompts,
    });
  }
  const registry = opts.registry ?? createRegistry(opts.workspace, { testNodes: opts.testNodes });
  const ok: PromptsSuccess['prompts'] = [];
  const failures: PromptsFailure['failures'] = [];
  list.forEach((p, index) => {
    const r = validatePrompt(p, { ...opts, registry });
    if (r.valid) ok.push({ prompt: r.prompt, promptId: r.promptId });
    else failures.push({ index, result: r });
  });
  if (failures.length === 0) return { valid: true, prompts: ok };
  const first = failures[0];
  return {
    valid: false,
    error: { ...first.result.error, message: `Prompt ${first.index}: ${first.result.error.message}`, extra_info: { ...first.result.error.extra_info, prompt_index: first.index } },
    failures,
    validation_errors: failures.flatMap((f) => f.result.validation_errors.map((e) => ({ ...e, prompt_index: f.index }))),
  };
}
