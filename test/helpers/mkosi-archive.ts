/**
 * Stand-ins for GitHub's source archives of the mkosi repository: tarballs laid out like
 * `https://github.com/systemd/mkosi/archive/refs/tags/v<version>.tar.gz` (top directory `mkosi-<version>/`,
 * the repository's `bin/mkosi` launcher, the `mkosi/` Python package beside it), built from a REAL mkosi
 * package found on this machine, and a loopback HTTP server that serves them and counts requests.
 */
import { cp, mkdir, mkdtemp, readFile, symlink, writeFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { runCommand } from '../../src/util/process.ts';

/** Where a real mkosi Python package may be: Debian sid's (CI, scripts/fetch-mkosi-sid.sh), then the system's. */
export const MKOSI_PACKAGE_CANDIDATES = [
  '/var/cache/itest-ci/mkosi-sid/root/usr/lib/python3/dist-packages/mkosi',
  '/usr/lib/python3/dist-packages/mkosi',
];

/** bin/mkosi exactly as in the mkosi repository at tag v25.3 (same licence as this project). */
export const UPSTREAM_BIN_MKOSI = `#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
set -e
PYTHONPATH="$(dirname "$(dirname "$(readlink -f "\${BASH_SOURCE[0]}")")")"
export PYTHONPATH
command="$(basename "\${BASH_SOURCE[0]//-/.}")"

if [ -z "$MKOSI_INTERPRETER" ]; then
    # Note the check seems to be inverted here because the if branch is
    # executed when the exit status is 0 which is equal to False in Python.
    if python3 -c "import sys; sys.exit(sys.version_info < (3, 9))"; then
        MKOSI_INTERPRETER=python3
    elif command -v python3.9 >/dev/null; then
        MKOSI_INTERPRETER=python3.9
    else
        echo "mkosi needs python 3.9 or newer (found $(python3 --version))"
        exit 1
    fi
fi

exec "$MKOSI_INTERPRETER" -B -m "$command" "$@"
`;

export interface RealMkosi {
  packageDir: string;
  /** __version__ of that package, what `mkosi --version` prints after "mkosi ". */
  version: string;
}

/** The first real mkosi package on this machine and its version, or undefined. */
export async function findRealMkosi(): Promise<RealMkosi | undefined> {
  for (const dir of MKOSI_PACKAGE_CANDIDATES) {
    for (const file of ['sandbox.py', 'config.py']) {
      const path = join(dir, file);
      if (!existsSync(path)) continue;
      const m = /^__version__\s*=\s*"([^"]+)"/m.exec(await readFile(path, 'utf8'));
      if (m?.[1]) return { packageDir: dir, version: m[1] };
    }
  }
  return undefined;
}

/**
 * Writes `<out>` (a .tar.gz) with top directory `mkosi-<tagVersion>/` holding bin/mkosi (+ the
 * bin/mkosi-initrd symlink as upstream) and, unless omitted, a copy of the real `mkosi/` package.
 */
export async function buildMkosiArchive(opts: {
  tagVersion: string;
  packageDir?: string;
  out: string;
}): Promise<void> {
  const stage = await mkdtemp(join(tmpdir(), 'itest-mkosi-stage-'));
  const root = join(stage, `mkosi-${opts.tagVersion}`);
  await mkdir(join(root, 'bin'), { recursive: true });
  await writeFile(join(root, 'bin', 'mkosi'), UPSTREAM_BIN_MKOSI);
  await chmod(join(root, 'bin', 'mkosi'), 0o755);
  await symlink('mkosi', join(root, 'bin', 'mkosi-initrd'));
  await writeFile(join(root, 'README.md'), `# mkosi ${opts.tagVersion} (test archive)\n`);
  if (opts.packageDir) {
    await cp(opts.packageDir, join(root, 'mkosi'), {
      recursive: true,
      filter: (src) => basename(src) !== '__pycache__',
    });
  }
  const r = await runCommand(['tar', '-czf', opts.out, '-C', stage, `mkosi-${opts.tagVersion}`]);
  if (r.code !== 0) throw new Error(`tar failed: ${r.stderr}`);
}

/** Serves fixed files on 127.0.0.1 (404 for anything else) and records every request path. */
export class ArchiveServer {
  readonly requests: string[] = [];
  readonly files = new Map<string, Buffer>();
  private server?: Server;
  private port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = req.url ?? '';
      this.requests.push(path);
      const body = this.files.get(path);
      if (!body) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-gzip', 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Base URL standing in for https://github.com/systemd/mkosi/archive/refs/tags. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/systemd/mkosi/archive/refs/tags`;
  }

  async serve(tagVersion: string, file: string): Promise<void> {
    this.files.set(`/systemd/mkosi/archive/refs/tags/v${tagVersion}.tar.gz`, await readFile(file));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
