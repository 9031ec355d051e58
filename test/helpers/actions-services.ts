/**
 * Local stand-ins for the GitHub Actions services that @actions/cache and @actions/artifact talk to:
 * the Twirp control plane (a small HTTP server here) and blob storage (the real Azure Storage emulator,
 * Azurite, handing out real SAS URLs for the well-known dev account). Loopback only; telemetry off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as netServer } from 'node:net';
import {
  BlobSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';

const ACCOUNT = 'devstoreaccount1';
// Azurite's published development key (not a secret).
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const ROOT = new URL('../..', import.meta.url).pathname;

/**
 * What the services do wrong, until set back to 'none':
 * - `twirp-500`, `blob-500`: answer every control-plane / storage request with HTTP 500;
 * - `twirp-hang`, `blob-hang`: accept the request (and read its body) but never answer;
 * - `blob-stall`: storage sends the response headers and part of a download, then nothing more;
 *   uploads are answered never, and their bodies are no longer read (the client's writes block);
 * - `blob-slow`: storage works but each response waits `slowMs` first.
 * Hung connections stay open until the client gives up or `stop()` closes them.
 */
export type Fault =
  'none' | 'twirp-500' | 'blob-500' | 'twirp-hang' | 'blob-hang' | 'blob-stall' | 'blob-slow';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = netServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class ActionsServices {
  fault: Fault = 'none';
  /** Delay before each storage response under `blob-slow`. */
  slowMs = 1000;
  readonly calls: string[] = [];
  private entries = new Map<string, { blob: string; finalized: boolean }>();
  private artifacts = new Map<string, { id: string; blob: string; name: string; size?: string }>();
  private azurite?: ChildProcess;
  private twirp?: Server;
  private blobProxy?: Server;
  blobPort = 0;
  proxyPort = 0;
  twirpPort = 0;
  private cred = new StorageSharedKeyCredential(ACCOUNT, KEY);

  async start(): Promise<void> {
    this.blobPort = await freePort();
    this.azurite = spawn(
      `${ROOT}/node_modules/.bin/azurite-blob`,
      [
        '--inMemoryPersistence',
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(this.blobPort),
        '--skipApiVersionCheck',
        '--disableTelemetry',
        '--silent',
      ],
      { stdio: 'ignore' },
    );
    const svc = new BlobServiceClient(`http://127.0.0.1:${this.blobPort}/${ACCOUNT}`, this.cred);
    for (let i = 0; ; i++) {
      try {
        await svc.getContainerClient('cache').createIfNotExists();
        await svc.getContainerClient('artifacts').createIfNotExists();
        break;
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Blob traffic goes through this proxy so that a test can make storage fail.
    this.blobProxy = createServer((req, res) => {
      this.calls.push(`blob ${req.method} ${(req.url ?? '').split('?')[0]}`);
      const fault = this.fault;
      if (fault === 'blob-500') {
        req.resume();
        res.writeHead(500).end('injected blob failure');
        return;
      }
      if (fault === 'blob-hang') {
        req.resume();
        return;
      }
      if (fault === 'blob-stall' && req.method !== 'GET' && req.method !== 'HEAD') {
        req.pause();
        return;
      }
      const up = new URL(req.url ?? '/', `http://127.0.0.1:${this.blobPort}`);
      const fwd = fetch(up, {
        method: req.method,
        headers: Object.fromEntries(
          Object.entries(req.headers).filter(([k]) => k !== 'host' && k !== 'connection'),
        ) as Record<string, string>,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : (req as unknown as ReadableStream),
        duplex: 'half',
      } as RequestInit);
      fwd
        .then(async (r) => {
          const headers: Record<string, string> = {};
          r.headers.forEach((v, k) => (headers[k] = v));
          const body = Buffer.from(await r.arrayBuffer());
          if (fault === 'blob-slow') await new Promise((w) => setTimeout(w, this.slowMs));
          res.writeHead(r.status, headers);
          // The declared length, half the bytes, then silence.
          if (fault === 'blob-stall' && body.length > 0) res.write(body.subarray(0, body.length >> 1));
          else res.end(body);
        })
        .catch((e: Error) => res.writeHead(502).end(e.message));
    });
    this.proxyPort = await freePort();
    await new Promise<void>((r) => this.blobProxy!.listen(this.proxyPort, '127.0.0.1', () => r()));
    this.twirpPort = await freePort();
    this.twirp = createServer((req, res) => void this.handleTwirp(req, res));
    await new Promise<void>((r) => this.twirp!.listen(this.twirpPort, '127.0.0.1', () => r()));
  }

  /** The environment @actions/cache and @actions/artifact need to talk to these services. */
  env(): Record<string, string> {
    const token = jwt({ scp: 'Actions.GenericRead:1 Actions.Results:run-backend-1:job-backend-1' });
    return {
      ACTIONS_CACHE_SERVICE_V2: '1',
      ACTIONS_RESULTS_URL: `http://127.0.0.1:${this.twirpPort}/`,
      ACTIONS_RUNTIME_TOKEN: token,
      NO_PROXY: '127.0.0.1,localhost',
    };
  }

  /**
   * Points this process's @actions/cache at the services (their env() plus `extra`, without
   * GITHUB_SERVER_URL and ACTIONS_CACHE_MODE); returns what puts process.env back.
   */
  useInProcess(extra: Record<string, string> = {}): () => void {
    const saved: NodeJS.ProcessEnv = {};
    const env: Record<string, string | undefined> = {
      ...this.env(),
      ...extra,
      GITHUB_SERVER_URL: undefined,
      ACTIONS_CACHE_MODE: undefined,
    };
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    return () => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    };
  }

  /** The newest finalized entry of this version whose key starts with one of the prefixes, in their order. */
  private byPrefix(
    prefixes: string[],
    version: string,
  ): { key: string; e: { blob: string; finalized: boolean } } | undefined {
    const all = [...this.entries].reverse();
    for (const prefix of prefixes)
      for (const [id, e] of all) {
        const [key, v] = id.split('|') as [string, string];
        if (v === version && e.finalized && key.startsWith(prefix)) return { key, e };
      }
    return undefined;
  }

  private sas(container: string, blob: string, perms: string): string {
    const q = generateBlobSASQueryParameters(
      {
        containerName: container,
        blobName: blob,
        permissions: BlobSASPermissions.parse(perms),
        expiresOn: new Date(Date.now() + 3600_000),
      },
      this.cred,
    );
    return `http://127.0.0.1:${this.proxyPort}/${ACCOUNT}/${container}/${blob}?${q.toString()}`;
  }

  private async handleTwirp(
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ): Promise<void> {
    let body = '';
    for await (const chunk of req) body += chunk;
    const method = (req.url ?? '').split('/').pop() ?? '';
    this.calls.push(`twirp ${method}`);
    const send = (obj: unknown, status = 200): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(obj));
    };
    if (this.fault === 'twirp-500') return send({ code: 'internal', msg: 'injected' }, 500);
    if (this.fault === 'twirp-hang') return;
    const b = JSON.parse(body || '{}') as Record<string, string>;
    switch (method) {
      case 'CreateCacheEntry': {
        const id = `${b.key}-${b.version}`.replace(/[^A-Za-z0-9-]/g, '_');
        this.entries.delete(`${b.key}|${b.version}`);
        this.entries.set(`${b.key}|${b.version}`, { blob: id, finalized: false });
        return send({ ok: true, signed_upload_url: this.sas('cache', id, 'cw') });
      }
      case 'FinalizeCacheEntryUpload': {
        const e = this.entries.get(`${b.key}|${b.version}`);
        if (!e) return send({ ok: false });
        e.finalized = true;
        return send({ ok: true, entry_id: '1' });
      }
      case 'GetCacheEntryDownloadURL': {
        // As GitHub's service: the key exactly, else for each restore key in order the newest entry
        // whose key starts with it; always of the same version (paths and compression).
        const exact = this.entries.get(`${b.key}|${b.version}`);
        const found = exact?.finalized
          ? { key: b.key!, e: exact }
          : this.byPrefix((b.restore_keys ?? []) as unknown as string[], b.version!);
        if (!found) return send({ ok: false });
        return send({
          ok: true,
          signed_download_url: this.sas('cache', found.e.blob, 'r'),
          matched_key: found.key,
        });
      }
      case 'CreateArtifact': {
        const id = String(this.artifacts.size + 1);
        const blob = `${b.name}-${id}`.replace(/[^A-Za-z0-9-]/g, '_');
        this.artifacts.set(b.name!, { id, blob, name: b.name! });
        return send({ ok: true, signed_upload_url: this.sas('artifacts', blob, 'cw') });
      }
      case 'FinalizeArtifact': {
        const a = this.artifacts.get(b.name!);
        if (!a) return send({ ok: false });
        a.size = b.size;
        return send({ ok: true, artifact_id: a.id });
      }
      case 'ListArtifacts':
        return send({
          artifacts: [...this.artifacts.values()]
            .filter((a) => !b.name_filter || a.name === b.name_filter)
            // Int64Value wrapper in Twirp JSON: the plain value, int64 as a string.
            .filter((a) => !b.id_filter || a.id === String(b.id_filter))
            .map((a) => ({ name: a.name, database_id: a.id, size: a.size ?? '0' })),
        });
      case 'GetSignedArtifactURL': {
        const a = this.artifacts.get(b.name!);
        return a
          ? send({ signed_url: this.sas('artifacts', a.blob, 'r') })
          : send({ code: 'not_found', msg: 'no such artifact' }, 404);
      }
      default:
        return send({ code: 'bad_route', msg: method }, 404);
    }
  }

  /** Downloads an uploaded artifact's zip straight from the emulator (what `gh run download` would get). */
  async artifactBytes(name: string): Promise<Buffer | undefined> {
    const a = this.artifacts.get(name);
    if (!a) return undefined;
    const r = await fetch(
      this.sas('artifacts', a.blob, 'r').replace(`:${this.proxyPort}/`, `:${this.blobPort}/`),
    );
    return Buffer.from(await r.arrayBuffer());
  }

  async stop(): Promise<void> {
    // Hung requests keep their connections open; close() alone would wait for them forever.
    this.twirp?.closeAllConnections();
    this.blobProxy?.closeAllConnections();
    await new Promise<void>((r) => (this.twirp ? this.twirp.close(() => r()) : r()));
    await new Promise<void>((r) => (this.blobProxy ? this.blobProxy.close(() => r()) : r()));
    this.azurite?.kill('SIGKILL');
  }
}

function b64url(s: string): string {
  return Buffer.from(s).toString('base64url');
}

/** An unsigned JWT: the libraries read its claims, nothing checks the signature. */
export function jwt(payload: Record<string, unknown>): string {
  return `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}.sig`;
}
