// ComfyUI's `GET /object_info` and `GET /object_info/{class}` bodies, built from the registry
// (same fields as ComfyUI's server.py node_info()).
import type { NodeRegistry } from './registry.ts';
import type { InputSpec, NodeDef } from './nodes.ts';

export interface ObjectInfo {
  input: { required?: Record<string, InputSpec>; optional?: Record<string, InputSpec>; hidden?: Record<string, InputSpec> };
  input_order: { required?: string[]; optional?: string[]; hidden?: string[] };
  output: string[];
  output_is_list: boolean[];
  output_name: string[];
  name: string;
  display_name: string;
  description: string;
  category: string;
  output_node: boolean;
}

export function nodeInfo(name: string, def: NodeDef): ObjectInfo {
  const input: ObjectInfo['input'] = {};
  const order: ObjectInfo['input_order'] = {};
  for (const category of ['required', 'optional', 'hidden'] as const) {
    const group = def.INPUT_TYPES[category];
    if (!group) continue;
    input[category] = group;
    order[category] = Object.keys(group);
  }
  return {
    input,
    input_order: order,
    output: [...def.RETURN_TYPES],
    output_is_list: def.RETURN_TYPES.map(() => false),
    output_name: [...(def.RETURN_NAMES ?? def.RETURN_TYPES)],
    name,
    display_name: def.DISPLAY_NAME,
    description: def.DESCRIPTION,
    category: def.CATEGORY,
    output_node: def.OUTPUT_NODE === true,
  };
}

/** `/object_info`: every class. */
export function objectInfo(registry: NodeRegistry): Record<string, ObjectInfo> {
  return Object.fromEntries(registry.classes().map((c) => [c, nodeInfo(c, registry.get(c)!)]));
}

/** `/object_info/{class}`: `{class: info}`, or `{}` for an unknown class (as ComfyUI answers). */
export function objectInfoFor(registry: NodeRegistry, classType: string): Record<string, ObjectInfo> {
  const def = registry.get(classType);
  return def ? { [classType]: nodeInfo(classType, def) } : {};
}
