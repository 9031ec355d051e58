/** JUnit XML for CI test panels (one testcase per test; attempts and reasons in the failure text). Pure. */
import { create } from 'xmlbuilder2';
import type { Results, TestResult } from './model.ts';

// XML 1.0 cannot carry most control characters, which guest output may contain.
// eslint-disable-next-line no-control-regex
const clean = (s: string) => s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd');

function details(t: TestResult): string {
  const lines = [
    `reason: ${t.reason}`,
    `exit status: ${t.exitStatus ?? 'none'} (expected ${t.expected.shouldFail ? 'a failure' : t.expected.exitStatus})`,
    ...t.attempts.map(
      (a) =>
        `attempt ${a.attempt}: ${a.status}: ${a.reason} [${a.durations.vmSeconds} s, machine ${a.machine}]`,
    ),
    ...(t.files.journal ? [`journal: ${t.files.journal}`] : []),
    ...(t.files.console ? [`console: ${t.files.console}`] : []),
    `rerun: ${t.rerun}`,
  ];
  return clean(lines.join('\n'));
}

const isFailed = (result: string) => /^(fail|error)/i.test(result);
const isSkipped = (result: string) => /^skip/i.test(result);

export function renderJUnit(r: Results, suiteName = 'itest'): string {
  const s = r.summary;
  const subs = r.tests.flatMap((t) => t.digest?.subtests ?? []);
  const counts = {
    tests: s.total + subs.length,
    failures: s.fail + subs.filter((x) => isFailed(x.result)).length,
    errors: s.error + s.timeout,
    skipped: s.skip + subs.filter((x) => isSkipped(x.result)).length,
    time: r.durationSeconds.toFixed(1),
  };
  const root = create({ version: '1.0', encoding: 'UTF-8' }).ele('testsuites', {
    name: suiteName,
    ...counts,
  });
  const suite = root.ele('testsuite', { name: suiteName, ...counts, timestamp: r.startedAt });
  const props = suite.ele('properties');
  const env = r.environment;
  for (const [k, v] of Object.entries({
    mkosi: env.mkosi.version,
    qemu: env.qemu.version,
    accel: env.accel,
    transport: env.transport,
    'image.key': env.image.key,
    'image.cache': env.image.cache,
  })) {
    props.ele('property', { name: k, value: v });
  }
  for (const t of r.tests) {
    const tc = suite.ele('testcase', {
      classname: `${suiteName}.${t.unit}`,
      name: t.name,
      time: t.timings.totalSeconds.toFixed(1),
    });
    switch (t.status) {
      case 'fail':
        tc.ele('failure', { message: clean(t.reason), type: 'fail' }).txt(details(t));
        break;
      case 'timeout':
        tc.ele('error', { message: clean(t.reason), type: 'timeout' }).txt(details(t));
        break;
      case 'error':
        tc.ele('error', { message: clean(t.reason), type: 'error' }).txt(details(t));
        break;
      case 'skip':
        tc.ele('skipped', { message: clean(t.reason) });
        break;
      case 'pass':
        break;
    }
    if (t.outputTail.length > 0) tc.ele('system-out').txt(clean(t.outputTail.join('\n')));
    // Subtests (MESSAGE_ID=27479699ef7fb3465eb94a6a2224ac15) become their own test cases under the test's class.
    for (const sub of t.digest?.subtests ?? []) {
      const sc = suite.ele('testcase', {
        classname: `${suiteName}.${t.name}`,
        name: `${t.name}/${sub.name}`,
        time: '0',
      });
      if (isFailed(sub.result))
        sc.ele('failure', {
          message: clean(`${sub.result}: ${sub.message.split('\n')[0]}`),
          type: sub.result,
        }).txt(clean(sub.message));
      else if (isSkipped(sub.result)) sc.ele('skipped', { message: clean(sub.message) });
    }
  }
  return root.end({ prettyPrint: true }) + '\n';
}
