import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { requeue, runPool } from '../../src/run/pool.ts';
import {
  computeSlots,
  decideHost,
  HostNotReady,
  TCG_TIMEOUT_SCALE,
  type HostRequest,
} from '../../src/host/decide.ts';
import { shouldRetry } from '../../src/run/execute-test.ts';
import type { HostInfo } from '../../src/host/probe.ts';
import { TEST_DEFAULTS, type TestSpec } from '../../src/config/test-spec.ts';

const GiB = 1024 ** 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('pool', () => {
  it('never runs more than `slots` at once, starts longest first, returns results in input order', async () => {
    const durations = [10, 60, 20, 40, 30];
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const out = await runPool(
      durations,
      2,
      (d) => d,
      async (d, i) => {
        started.push(d);
        running++;
        peak = Math.max(peak, running);
        await sleep(d);
        running--;
        return `r${i}`;
      },
    );
    assert.equal(peak, 2);
    assert.deepEqual(started.slice(0, 2), [60, 40]);
    assert.deepEqual(out, ['r0', 'r1', 'r2', 'r3', 'r4']);
  });

  it('results do not depend on completion order', async () => {
    const run = (delays: number[]) =>
      runPool(
        [0, 1, 2, 3],
        4,
        () => 0,
        async (x, i) => (await sleep(delays[i]!), x * 10),
      );
    assert.deepEqual(await run([40, 30, 20, 10]), await run([10, 20, 30, 40]));
  });
});

describe('pool with a changing size (KVM -> TCG mid-run)', () => {
  it('reads the size before each start: running items go on, new ones wait for the smaller limit', async () => {
    let limit = 4;
    let running = 0;
    const peaks: number[] = [];
    const out = await runPool(
      [1, 2, 3, 4, 5, 6, 7, 8],
      () => limit,
      () => 0,
      async (x) => {
        running++;
        peaks.push(running);
        // The first item to finish shrinks the pool, as a fallback to TCG does.
        await sleep(x === 1 ? 5 : 30);
        if (x === 1) limit = 1;
        running--;
        return x * 2;
      },
    );
    assert.deepEqual(out, [2, 4, 6, 8, 10, 12, 14, 16]);
    assert.equal(Math.max(...peaks.slice(0, 4)), 4, 'four at once before the switch');
    assert.deepEqual(peaks.slice(4), [1, 1, 1, 1], `after the switch one at a time: ${peaks.join(',')}`);
  });
});

describe('pool: a worker hands its item back', () => {
  it('a requeued item waits for a slot under the current limit, ahead of items not started', async () => {
    let limit = 3;
    let running = 0;
    let peakAfterSwitch = 0;
    const order: string[] = [];
    const out = await runPool(
      ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, again: true })),
      () => limit,
      () => 0,
      async (item) => {
        running++;
        if (limit === 1) peakAfterSwitch = Math.max(peakAfterSwitch, running);
        order.push(item.name);
        await sleep(10);
        running--;
        // The first three hand themselves back once (their KVM attempt was stopped); the pool shrinks.
        if (item.again && ['a', 'b', 'c'].includes(item.name)) {
          limit = 1;
          return requeue({ ...item, again: false });
        }
        return item.name.toUpperCase();
      },
    );
    assert.deepEqual(out, ['A', 'B', 'C', 'D', 'E']);
    assert.equal(peakAfterSwitch, 1, 'after the switch one at a time, reruns included');
    assert.deepEqual(order.slice(0, 3).sort(), ['a', 'b', 'c']);
    assert.deepEqual(order.slice(3, 6).sort(), ['a', 'b', 'c'], `reruns first: ${order.join(' ')}`);
  });
});

describe('pool sizing', () => {
  it('TCG is bound by CPUs per vCPU, KVM by memory; --jobs wins', () => {
    assert.equal(
      computeSlots({ cpus: 4, memAvailable: 16 * GiB, vmRam: GiB, vmCpus: 1, accel: 'tcg' }).slots,
      4,
    );
    assert.equal(
      computeSlots({ cpus: 4, memAvailable: 16 * GiB, vmRam: GiB, vmCpus: 2, accel: 'tcg' }).slots,
      2,
    );
    assert.equal(
      computeSlots({ cpus: 4, memAvailable: 4 * GiB, vmRam: 2 * GiB, vmCpus: 2, accel: 'kvm' }).slots,
      1,
    );
    assert.equal(
      computeSlots({ cpus: 4, memAvailable: 16 * GiB, vmRam: GiB, vmCpus: 2, accel: 'kvm' }).slots,
      4,
    );
    assert.equal(
      computeSlots({ cpus: 4, memAvailable: GiB / 2, vmRam: GiB, vmCpus: 1, accel: 'kvm' }).slots,
      1,
      'at least one',
    );
    assert.equal(
      computeSlots({ cpus: 2, memAvailable: 16 * GiB, vmRam: GiB, vmCpus: 1, accel: 'tcg', jobs: 7 }).slots,
      7,
    );
  });
});

const host = (over: Partial<HostInfo> = {}): HostInfo => ({
  arch: 'x86_64',
  mkosi: { command: ['mkosi'], version: '24.3' },
  qemu: { binary: 'qemu-system-x86_64', version: '10.0.2' },
  kvm: { usable: true, detail: 'ok' },
  vhostVsock: { usable: true, detail: 'ok' },
  journalRemote: '/usr/lib/systemd/systemd-journal-remote',
  journalctl: '/usr/bin/journalctl',
  cpus: 4,
  memTotal: 16 * GiB,
  memAvailable: 12 * GiB,
  ...over,
});

describe('host decisions', () => {
  it('auto picks KVM and vsock when usable', () => {
    const p = decideHost(host(), { transport: 'auto', kvm: 'auto' });
    assert.equal(p.accel, 'kvm');
    assert.equal(p.transport, 'vsock');
    assert.equal(p.timeoutScale, 1);
    assert.equal(p.defaultCpus, 2);
    assert.deepEqual(p.warnings, []);
  });

  it('falls back to TCG loudly and to serial without vhost-vsock', () => {
    const p = decideHost(
      host({
        kvm: { usable: false, detail: 'no /dev/kvm' },
        vhostVsock: { usable: false, detail: 'no vsock' },
      }),
      { transport: 'auto', kvm: 'auto' },
    );
    assert.equal(p.accel, 'tcg');
    assert.equal(p.transport, 'serial');
    assert.equal(p.timeoutScale, TCG_TIMEOUT_SCALE);
    assert.match(p.warnings[0]!, /no \/dev\/kvm.*TCG.*scaled by 3/);
  });

  it('auto: the kernel vsock first, then vhost-device-vsock (vsock-user), then serial; each says why', () => {
    const noKernel = { vhostVsock: { usable: false, detail: '/dev/vhost-vsock does not exist' } };
    const device = { vhostDeviceVsock: { path: '/usr/local/bin/vhost-device-vsock', version: '0.3.0' } };
    const pick = (over: Partial<HostInfo>, transport: HostRequest['transport'] = 'auto') => {
      const p = decideHost(host(over), { transport, kvm: 'auto' });
      return [p.transport, p.transportDetail];
    };
    assert.deepEqual(pick(device), ['vsock', 'vsock (/dev/vhost-vsock usable)']);
    assert.deepEqual(pick({ ...noKernel, ...device }), [
      'vsock-user',
      'user-space vsock: vhost-device-vsock 0.3.0 at /usr/local/bin/vhost-device-vsock (/dev/vhost-vsock does not exist)',
    ]);
    assert.deepEqual(pick(noKernel), [
      'serial',
      'virtio-serial (/dev/vhost-vsock does not exist; no vhost-device-vsock on PATH)',
    ]);
    assert.deepEqual(pick(device, 'vsock-user'), [
      'vsock-user',
      'user-space vsock by request (vhost-device-vsock 0.3.0 at /usr/local/bin/vhost-device-vsock)',
    ]);
    assert.throws(
      () => pick({}, 'vsock-user'),
      /--transport vsock-user needs vhost-device-vsock on PATH\. Fix: run scripts\/setup-host\.sh/,
    );
    assert.throws(
      () => pick({ ...noKernel, ...device }, 'vsock'),
      /needs \/dev\/vhost-vsock: .*or use --transport vsock-user \(vhost-device-vsock 0\.3\.0 at .*\) or --transport auto/,
    );
  });

  it('lists every missing tool with how to install it', () => {
    try {
      decideHost(
        host({
          mkosi: { command: ['mkosi'], error: 'mkosi: not found' },
          qemu: { binary: 'qemu-system-x86_64', error: 'not found on PATH' },
          journalRemote: undefined,
        }),
        {
          transport: 'auto',
          kvm: 'auto',
        },
      );
      assert.fail('expected HostNotReady');
    } catch (e) {
      assert.ok(e instanceof HostNotReady);
      assert.equal(e.problems.length, 3);
      assert.match(e.message, /mkosi: mkosi: not found.*apt-get install/);
      assert.match(e.message, /QEMU: not found on PATH.*qemu-system-x86/);
      assert.match(e.message, /systemd-journal-remote not found.*apt-get install systemd-journal-remote/);
    }
  });

  it('required KVM or vsock that is missing is an error; an old mkosi is an error', () => {
    assert.throws(
      () => decideHost(host({ kvm: { usable: false, detail: 'x' } }), { transport: 'auto', kvm: 'yes' }),
      /KVM was required/,
    );
    assert.throws(
      () =>
        decideHost(host({ vhostVsock: { usable: false, detail: 'x' } }), { transport: 'vsock', kvm: 'auto' }),
      /needs \/dev\/vhost-vsock/,
    );
    assert.throws(
      () =>
        decideHost(host({ mkosi: { command: ['mkosi'], version: '20' } }), {
          transport: 'auto',
          kvm: 'auto',
        }),
      /too old/,
    );
    assert.equal(decideHost(host(), { transport: 'serial', kvm: 'no', timeoutScale: 5 }).timeoutScale, 5);
  });
});

describe('retries', () => {
  const spec = { ...({} as TestSpec), retries: 1, infraRetries: TEST_DEFAULTS.infraRetries };
  it('retries infrastructure errors once and failures only when the test allows it', () => {
    assert.equal(shouldRetry({ status: 'error', infra: true }, { infra: 0, flaky: 0 }, spec), 'infra');
    assert.equal(shouldRetry({ status: 'error', infra: true }, { infra: 1, flaky: 0 }, spec), undefined);
    assert.equal(shouldRetry({ status: 'error', infra: false }, { infra: 0, flaky: 0 }, spec), undefined);
    assert.equal(shouldRetry({ status: 'fail', infra: false }, { infra: 0, flaky: 0 }, spec), 'flaky');
    assert.equal(shouldRetry({ status: 'timeout', infra: false }, { infra: 0, flaky: 1 }, spec), undefined);
    assert.equal(
      shouldRetry({ status: 'fail', infra: false }, { infra: 0, flaky: 0 }, { ...spec, retries: 0 }),
      undefined,
    );
    assert.equal(shouldRetry({ status: 'pass', infra: false }, { infra: 0, flaky: 0 }, spec), undefined);
  });
});
