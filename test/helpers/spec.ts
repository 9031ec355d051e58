// A resolved TestSpec with every default, for tests that build argument vectors or run attempts.
import { TEST_DEFAULTS, type TestSpec } from '../../src/config/test-spec.ts';
import type { HostSetup } from '../../src/host/decide.ts';
import { dialectFor } from '../../src/mkosi/dialect.ts';
import { Accelerator } from '../../src/run/accelerator.ts';

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

/** A host plan as decideHost makes it, for tests that run attempts without probing a host. */
export function hostSetup(over: Partial<HostSetup> = {}): HostSetup {
  return {
    dialect: dialectFor('25.3'),
    accel: 'tcg',
    accelDetail: 'KVM disabled by request; software emulation (TCG)',
    transport: 'vsock',
    transportDetail: 'vsock by request',
    timeoutScale: 1,
    defaultCpus: 1,
    warnings: [],
    ...over,
  };
}

/** The run's accelerator fixed on TCG with timeout scale 1 (nothing to fall back from). */
export function tcgAccelerator(): Accelerator {
  return new Accelerator(hostSetup(), { transport: 'vsock', kvm: 'no', timeoutScale: 1 });
}
