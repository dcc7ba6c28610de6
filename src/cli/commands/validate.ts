// `streamfleet validate <prompt.json> [--workspace DIR]`: validates a prompt file (one prompt, or a
// list of them) the way the API would and prints the answer as JSON on stdout.
// Exit 0 valid, 1 invalid, 2 usage or I/O error.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { defaultConfig } from '../../config.ts';
import { createRegistry } from '../../inference/registry.ts';
import { validatePrompt, validatePrompts } from '../../inference/validate.ts';
import { parseCommandArgs, usageError } from '../args.ts';

export const usage = 'validate <prompt.json> [--workspace DIR]   check a ComfyUI API-format prompt (or a list of them)';

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('validate', usage, argv, { workspace: { type: 'string' } });
  if (typeof parsed === 'number') return parsed;
  if (parsed.positionals.length !== 1) return usageError('validate', usage);
  const file = parsed.positionals[0];
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    process.stderr.write(`streamfleet validate: cannot read ${file}: ${(err as Error).message}\n`);
    return 2;
  }
  // Validation only reads the workspace (its models/ folder); it never creates one.
  const workspace = resolve(parsed.values.workspace ?? defaultConfig.inference.workspace);
  const registry = createRegistry(workspace);

  let isList = false;
  try {
    isList = Array.isArray(JSON.parse(text));
  } catch {
    // not JSON: validatePrompt answers with invalid_prompt
  }
  if (isList) {
    const r = validatePrompts(text, { workspace, registry });
    const body = r.valid
      ? { valid: true, prompt_ids: r.prompts.map((p) => p.promptId) }
      : { valid: false, validation_errors: r.validation_errors };
    process.stdout.write(JSON.stringify(body, null, 2) + '\n');
    return r.valid ? 0 : 1;
  }
  const r = validatePrompt(text, { workspace, registry });
  const body = r.valid ? { valid: true, prompt_id: r.promptId } : { valid: false, validation_errors: r.validation_errors };
  process.stdout.write(JSON.stringify(body, null, 2) + '\n');
  return r.valid ? 0 : 1;
}
