// The folders of src/ depend one way (docs/architecture.md): http -> actors -> machines;
// actors -> transport; runner -> media, inference, transport; everything may use the root modules
// (config, errors, log, stream-spec, ...), which use nothing above them. This test reads every import
// in src/ and fails on an edge the table does not allow, naming the file. It also checks that what a
// stream is (spec, status, architecture) is defined once.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';

const SRC = resolve(import.meta.dirname, '../src');

/** Which folders each folder may import (besides itself and the root modules). */
const ALLOWED: Record<string, string[]> = {
  root: [],
  transport: [],
  media: [],
  machines: [],
  inference: ['media'],
  runner: ['media', 'inference', 'transport'],
  actors: ['machines', 'transport', 'inference'],
  http: ['actors', 'machines', 'inference', 'transport'],
  cli: ['http', 'actors', 'machines', 'inference', 'media', 'transport', 'runner'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const folderOf = (file: string): string => {
  const rel = relative(SRC, file).split('/');
  return rel.length === 1 ? 'root' : rel[0];
};

const sources = files(SRC).map((f) => ({ file: f, text: readFileSync(f, 'utf8') }));

describe('layering', () => {
  test('no folder of src/ imports a folder above it', () => {
    expect(Object.keys(ALLOWED).sort()).toEqual([...new Set(sources.map((s) => folderOf(s.file)))].sort());
    const bad: string[] = [];
    for (const { file, text } of sources) {
      const from = folderOf(file);
      for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) {
        const to = folderOf(resolve(dirname(file), m[1]));
        if (to !== from && to !== 'root' && !ALLOWED[from].includes(to)) bad.push(`${relative(SRC, file)} imports ${m[1]} (${from} -> ${to})`);
      }
    }
    expect(bad).toEqual([]);
  });

  test('a stream spec, its status and its architecture are each defined once', () => {
    const definitions = (re: RegExp) => sources.filter((s) => re.test(s.text)).map((s) => relative(SRC, s.file));
    expect(definitions(/export (const|type|interface) StreamSpec\b/)).toEqual(['stream-spec.ts']);
    expect(definitions(/export (const|type|interface) StreamStatus\b/)).toEqual(['stream-spec.ts']);
    expect(definitions(/export (const|type|interface) WorkerStatus\b/)).toEqual(['stream-spec.ts']);
    expect(definitions(/export (const|type|interface) Architecture\b/)).toEqual(['stream-spec.ts']);
    expect(definitions(/export (const|type|interface) StreamPrompt\b/)).toEqual(['stream-spec.ts']);
    // No second enumeration of the architectures anywhere else.
    expect(definitions(/\[\s*'dedicated',\s*'shared',\s*'prompt_worker'\s*\]/)).toEqual(['stream-spec.ts']);
  });

  test('replies are parsed, not cast, in src/actors and src/http', () => {
    const casts = sources
      .filter((s) => ['actors', 'http'].includes(folderOf(s.file)))
      .flatMap((s) =>
        s.text
          .split('\n')
          .map((line, i) => ({ line, at: `${relative(SRC, s.file)}:${i + 1}` }))
          .filter(({ line }) => /\b(r|reply|result|res|msg)(\.\w+)*\s+as\s+(unknown|[A-Z]\w*)/.test(line)),
      )
      .map((c) => `${c.at}: ${c.line.trim()}`);
    expect(casts).toEqual([]);
  });
});

describe('error codes', () => {
  test('every code of the registry is documented, with its status, in one case style', async () => {
    const { ERROR_CODES } = await import('../src/errors.ts');
    const doc = readFileSync(resolve(import.meta.dirname, '../docs/api-and-prompts.md'), 'utf8');
    const missing: string[] = [];
    for (const [code, d] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
      const row = new RegExp(`^\\| \`${code}\` \\| [^|]+ \\| ${d.status} \\|`, 'm');
      if (!row.test(doc)) missing.push(code);
    }
    expect(missing).toEqual([]);
    // And nothing documented that the registry does not have.
    const documented = [...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.filter((c) => !(c in ERROR_CODES))).toEqual([]);
  });
});
