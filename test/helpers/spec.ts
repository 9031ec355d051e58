// A resolved TestSpec with every default, for tests that build argument vectors or run attempts.
import { TEST_DEFAULTS, type TestSpec } from '../../src/config/test-spec.ts';

export function testSpec(over: Partial<TestSpec> = {}): TestSpec {
  return {
    name: 'T',
    unit: 'T.service',
    timeout: 30,
    exitStatus: TEST_DEFAULTS.exitStatus,
    skipStatus: TEST_DEFAULTS.skipStatus,
    shouldFail: false,
    kernelCmdline: [],
    credentials: {},
    mkosiArgs: [],
    qemuArgs: [],
    ram: TEST_DEFAULTS.ram,
    retries: TEST_DEFAULTS.retries,
    infraRetries: TEST_DEFAULTS.infraRetries,
    tags: [],
    failOnCoredump: true,
    source: 'manifest',
    ...over,
  };
}
