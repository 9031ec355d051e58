// One engine run of the demo's TEST-02-SKIP in this fresh process, cancelled as soon as the first VM is
// launched (Ui.testStart); prints the phase times as JSON. bench/warm-start.ts calls it.
// Usage: warm-one.ts CACHE_DIR OUTPUT_DIR
import { join } from 'node:path';
import { runEngine } from '../src/engine/run.ts';
import type { Ui } from '../src/engine/ui.ts';
import type { RunConfig } from '../src/config/run-config.ts';

const [cacheDir, outputDir] = process.argv.slice(2);
if (!cacheDir || !outputDir) throw new Error('usage: warm-one.ts CACHE_DIR OUTPUT_DIR');
const configDir = new URL('../examples/demo', import.meta.url).pathname;
const cfg: RunConfig = {
  configDir,
  manifestPath: join(configDir, 'itest.yaml'),
  outputDir,
  tests: ['TEST-02-SKIP'],
  tags: [],
  transport: 'serial',
  kvm: 'no',
  keep: 'all',
  mkosi: ['mkosi'],
  cacheDir,
  useCache: true,
  hashKey: '',
  hashGlobs: [],
  keyPrefix: 'itest-image',
  invokedAs: 'itest',
  door: 'cli',
  env: process.env,
};
const controller = new AbortController();
const t0 = performance.now();
const at = (): number => (performance.now() - t0) / 1000;
const phases: Record<string, number> = {};
let launched: number | undefined;
const ui: Ui = {
  info: (line) => {
    if (line.startsWith('host:')) phases.hostProbed = at();
    if (line.startsWith('image:')) phases.imageReady = at();
  },
  warn: () => {},
  planned: () => (phases.planned = at()),
  testStart: () => {
    launched ??= at();
    controller.abort();
  },
  testEnd: () => {},
};
const out = await runEngine(cfg, ui, controller.signal);
console.log(
  JSON.stringify({
    // From the engine's start (runEngine called) to the first VM's process started.
    launchedSeconds: launched,
    // The same, counted from this process's start (node + tsx + module loading included).
    sinceProcessStart: launched !== undefined ? launched + t0 / 1000 : undefined,
    phases,
    image: out.results.environment.image,
  }),
);
