/**
 * One package list (scripts/host-packages.txt): setup-host.sh reads it, and every workflow step that
 * installs host packages on a runner installs exactly that list (a workflow cannot read the file: the
 * reusable one runs in the caller's checkout).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { runCommand } from '../../src/util/process.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

async function listed(): Promise<string[]> {
  const text = await readFile(join(ROOT, 'scripts/host-packages.txt'), 'utf8');
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/** The package names of each `apt-get install` in a workflow's run steps (options and $VARS left out). */
function aptInstalls(workflow: string): { where: string; packages: string[] }[] {
  const doc = parse(workflow) as { jobs: Record<string, { steps?: { name?: string; run?: string }[] }> };
  const out: { where: string; packages: string[] }[] = [];
  for (const [job, { steps = [] }] of Object.entries(doc.jobs)) {
    for (const step of steps) {
      for (const line of (step.run ?? '').split('\n')) {
        const m = /apt-get\s+install\s+(.*)$/.exec(line);
        if (!m?.[1]) continue;
        // Options and the caller's own packages (`"${packages[@]}"`, quoted or not) are not the list.
        const packages = m[1]
          .split(/\s+/)
          .map((w) => w.replace(/^["']|["']$/g, ''))
          .filter((w) => w && !w.startsWith('-') && !w.startsWith('$'));
        out.push({ where: `${job} / ${step.name ?? '(unnamed step)'}`, packages });
      }
    }
  }
  return out;
}

describe('host package list', () => {
  it('lists python3-pefile (mkosi 26+ needs it for every vm) and no duplicates', async () => {
    const list = await listed();
    assert.ok(list.includes('python3-pefile'));
    assert.equal(new Set(list).size, list.length);
  });

  it('every workflow that installs host packages installs exactly the list', async () => {
    const list = (await listed()).sort();
    const dir = join(ROOT, '.github/workflows');
    let seen = 0;
    for (const f of (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f))) {
      for (const { where, packages } of aptInstalls(await readFile(join(dir, f), 'utf8'))) {
        seen++;
        assert.deepEqual([...packages].sort(), list, `${f}: ${where}`);
      }
    }
    assert.ok(seen >= 3, `expected the apt steps of itest.yml (2) and ci.yml (1), found ${seen}`);
  });

  it('the parser sees a package missing from a workflow (the check can fail)', () => {
    const [one] = aptInstalls(
      'jobs:\n  a:\n    steps:\n      - name: x\n        run: sudo apt-get install -y -q qemu-utils $EXTRA\n',
    );
    assert.deepEqual(one?.packages, ['qemu-utils']);
  });

  it('setup-host.sh installs mkosi and the same list', async () => {
    const r = await runCommand([join(ROOT, 'scripts/setup-host.sh'), '--print-packages']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['mkosi', ...(await listed())]);
  });
});
