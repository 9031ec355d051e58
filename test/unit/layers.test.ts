/**
 * The layers of src/, lowest first: a folder may import its own and lower folders only, so the core can
 * be read (and tested) bottom-up and nothing in it reaches for a front door.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = new URL('../../src', import.meta.url).pathname;
const LAYERS = [
  'util', // processes, errors, sizes, deadlines: no project imports
  'qemu', // QMP, QEMU's KVM messages, watching a QEMU
  'guest', // what is injected into the guest
  'config', // manifest, test specs, RunConfig
  'digest', // journal digest
  'mkosi', // dialects, the VM argument vector
  'host', // probes and host decisions
  'results', // model, classification, renderers
  'image', // config hash, image caches, build
  'run', // the output layout, one attempt, retries, the pool
  'shard', // durations, shard plans, merge
  'engine', // orchestration
  'cli', // front door
  'action', // front door
];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The folder of src/ a file (or an import's target) is in. */
const layer = (path: string) => relative(SRC, path).split('/')[0]!;

describe('layers of src/', () => {
  it('every folder is in the layer list', () => {
    const folders = readdirSync(SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    assert.deepEqual(
      folders.filter((f) => !LAYERS.includes(f)),
      [],
    );
  });

  it('no import runs up the layers', () => {
    const up: string[] = [];
    for (const f of files(SRC)) {
      const from = layer(f);
      for (const m of readFileSync(f, 'utf8').matchAll(/from '(\.\.?\/[^']+)'/g)) {
        const to = layer(resolve(dirname(f), m[1]!));
        if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) up.push(`${relative(SRC, f)} -> ${to}`);
      }
    }
    assert.deepEqual(up, []);
  });

  it('only src/action imports the GitHub Actions toolkit (@actions/*)', () => {
    const outside = files(SRC).filter(
      (f) => layer(f) !== 'action' && /(from |import\()'@actions\//.test(readFileSync(f, 'utf8')),
    );
    assert.deepEqual(
      outside.map((f) => relative(SRC, f)),
      [],
    );
  });
});
