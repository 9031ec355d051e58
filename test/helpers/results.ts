// Builders and validators shared by the tests.
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import resultsSchema from '../../schemas/results.schema.json' with { type: 'json' };
import { summarize, type Results, type TestResult, type Status } from '../../src/results/model.ts';

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats.default(ajv);
const validate = ajv.compile(resultsSchema);

/** Throws with every schema violation when r is not a valid results.json. */
export function assertValidResults(r: unknown): void {
  if (!validate(r))
    throw new Error(`results.json invalid: ${ajv.errorsText(validate.errors, { separator: '\n' })}`);
}

export function testResult(name: string, status: Status, over: Partial<TestResult> = {}): TestResult {
  return {
    name,
    unit: `${name}.service`,
    status,
    reason: `${status} reason`,
    exitStatus: status === 'pass' ? 123 : status === 'skip' ? 77 : status === 'fail' ? 1 : null,
    expected: { exitStatus: 123, skipStatus: 77, shouldFail: false },
    tags: [],
    flaky: false,
    attempts: [
      {
        attempt: 1,
        status,
        reason: `${status} reason`,
        guestStatus: null,
        infra: false,
        machine: `itest-${name.toLowerCase()}-abc-1`,
        mkosiExit: 0,
        startedAt: '2026-11-27T00:00:00.000Z',
        durations: { vmSeconds: 40, collectSeconds: 0.5 },
        files: { console: `/out/${name}.console.log` },
      },
    ],
    timings: { queuedSeconds: 0, vmSeconds: 40, collectSeconds: 0.5, totalSeconds: 40.5 },
    files: { console: `/out/${name}.console.log`, journal: `/out/${name}.journal` },
    outputTail: [`${name}: hello`],
    rerun: `itest run --config . --test ${name}`,
    ...over,
  };
}

export function results(tests: TestResult[]): Results {
  return {
    version: 1,
    startedAt: '2026-11-27T00:00:00.000Z',
    finishedAt: '2026-11-27T00:01:00.000Z',
    durationSeconds: 60,
    config: { dir: '/cfg', manifest: '/cfg/itest.yaml' },
    environment: {
      tool: { name: 'itest-action', version: '0.1.0' },
      host: { arch: 'x86_64', cpus: 2, memTotal: 8 * 1024 ** 3, kernel: '6.1.0' },
      mkosi: { version: '24.3', dialect: 'mkosi24', command: ['mkosi'] },
      qemu: { version: '10.0.2' },
      accel: 'tcg',
      accelDetail: 'no kvm',
      transport: 'serial',
      transportDetail: 'no vsock',
      jobs: 2,
      timeoutScale: 3,
      image: {
        key: 'itest-image-x86_64-mkosi24.3-abc',
        cache: 'hit',
        backend: 'local',
        dir: '/cache/x',
        restoreSeconds: 0,
      },
    },
    summary: summarize(tests),
    tests,
  };
}
