/**
 * `itest ssh TEST [--output DIR] [-- COMMAND...]`: a shell (or one command) in the running VM of TEST, over
 * vsock, with no network: ssh with the run's throw-away key through `itest vsock-proxy` (vsock-user), or
 * mkosi's own ssh verb (the kernel's vsock). Works while `itest run` (or `itest test`) has the VM up.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { OutputLayout } from '../run/output-layout.ts';
import { readVmRecord, sshArgv } from '../run/ssh-access.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { procStat } from '../util/proc-stat.ts';
import { vsockProxy } from './vsock-proxy.ts';

/** How to start this very CLI again (node, its loader flags under tsx, the script). */
const self = (): string[] => [process.execPath, ...process.execArgv, process.argv[1]!];

async function ssh(test: string, o: { output: string }, command: string[]): Promise<number> {
  const out = resolve(o.output);
  const record = await readVmRecord(new OutputLayout(out).test(test).work);
  const notRunning = `no running VM of ${test} under ${out}: \`itest ssh\` reaches a test's VM while \`itest run\` has it up (start one with \`itest run --test ${test} --shell\`, and give the same --output)`;
  if (!record || (await procStat(record.pid)) === undefined) throw new UserError(notRunning);
  const argv =
    record.transport === 'vsock-user' && record.uds
      ? sshArgv({ ...record, uds: record.uds }, self(), command)
      : record.mkosiSsh
        ? [...record.mkosiSsh, ...command]
        : undefined;
  if (!argv)
    throw new UserError(`${test}: its VM has no vsock, so no ssh: use \`itest run --shell\`'s console`);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
  return new Promise((done) => {
    child.once('error', (e) => {
      console.error(`itest ssh: cannot run ${argv[0]}: ${e.message} (install openssh-client)`);
      done(ExitCode.hostNotReady);
    });
    child.once('exit', (code, signal) => done(code ?? (signal ? 128 + 1 : 1)));
  });
}

export function addSshVerbs(program: Command, defaultOutput: string): void {
  program
    .command('ssh')
    .description("a shell, or one command, in a running test's VM over vsock (no network needed)")
    .argument('<test>', 'the test whose VM to reach')
    .argument('[command...]', 'run this instead of a shell (after --)')
    .option('--output <dir>', 'the results directory of the run that has the VM up', defaultOutput)
    .action(async (test: string, command: string[], o: { output: string }) => {
      process.exitCode = await ssh(test, o, command);
    });
  program
    .command('vsock-proxy', { hidden: true })
    .description("ssh's ProxyCommand for a vsock-user VM: CONNECT to the guest's port, then relay")
    .argument('<uds>', "vhost-device-vsock's host-to-guest socket")
    .argument('<port>', "the guest's vsock port")
    .action(async (uds: string, port: string) => {
      process.exitCode = await vsockProxy(uds, port);
    });
}
