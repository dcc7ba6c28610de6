// The node registry of one workspace: class_type -> declaration. It is a function of the workspace
// because combos list files found there (OnnxModel's model_name), so a prompt naming a model that is
// not present fails as value_not_in_list with the valid options, as in ComfyUI.
import { listModels } from './workspace.ts';
import { nodeDefinitions, type InputSpec, type InputType, type NodeDef } from './nodes.ts';

export interface NodeRegistry {
  /** The declaration of a class, or undefined when no such node exists. */
  get(classType: string): NodeDef | undefined;
  /** Class names, sorted. */
  classes(): string[];
}

export interface RegistryOptions {
  /** Include the test-only classes (config `inference.testNodes`). Default false. */
  testNodes?: boolean;
}

/** A registry over the given model files (for callers that already listed the workspace). */
export function registryFromModels(models: readonly string[], opts: RegistryOptions = {}): NodeRegistry {
  const defs = new Map(Object.entries(nodeDefinitions({ models: [...models], testNodes: opts.testNodes === true })));
  return {
    get: (classType) => defs.get(classType),
    classes: () => [...defs.keys()].sort(),
  };
}

/** The registry of a workspace as it is now (models/ is listed on each call). */
export function createRegistry(workspace: string, opts: RegistryOptions = {}): NodeRegistry {
  return registryFromModels(listModels(workspace), opts);
}

export type InputCategory = 'required' | 'optional';

export interface DeclaredInput {
  name: string;
  category: InputCategory;
  spec: InputSpec;
  type: InputType;
}

/** Required then optional inputs in declaration order (hidden inputs are never read from a prompt). */
export function declaredInputs(def: NodeDef): DeclaredInput[] {
  const out: DeclaredInput[] = [];
  for (const category of ['required', 'optional'] as const) {
    for (const [name, spec] of Object.entries(def.INPUT_TYPES[category] ?? {})) {
      out.push({ name, category, spec, type: spec[0] });
    }
  }
  return out;
}

/** ComfyUI's validate_node_input: equal types, a `*` on either side, or comma unions that overlap. */
export function typesCompatible(received: string, expected: InputType): boolean {
  if (typeof expected !== 'string') return false;
  if (received === expected) return true;
  const r = new Set(received.split(',').map((t) => t.trim()));
  const e = new Set(expected.split(',').map((t) => t.trim()));
  if (r.has('*') || e.has('*')) return true;
  for (const t of r) if (e.has(t)) return true;
  return false;
}
