/**
 * A local stand-in for the part of the GitHub REST API that check runs use, on 127.0.0.1 (random
 * port): POST /repos/:owner/:repo/check-runs and PATCH /repos/:owner/:repo/check-runs/:id. It records
 * every request and enforces GitHub's limits the way GitHub answers them (422): at most 50 annotations
 * per request, `output.summary` / `output.text` at most 65535 characters and 65535 bytes, annotation
 * message and raw_details at most 64 KB, title at most 255 characters, required fields present.
 * Updates append annotations, as GitHub does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * - `ok`: answers like GitHub;
 * - `read-only`: 403 "Resource not accessible by integration" (a token without `checks: write`);
 * - `server-error`: 500 on every request.
 */
export type StandinMode = 'ok' | 'read-only' | 'server-error';

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
  status: number;
}

interface Annotation {
  path?: unknown;
  start_line?: unknown;
  end_line?: unknown;
  annotation_level?: unknown;
  message?: unknown;
  title?: unknown;
  raw_details?: unknown;
}

interface Output {
  title?: unknown;
  summary?: unknown;
  text?: unknown;
  annotations?: Annotation[];
}

export interface StoredCheckRun {
  id: number;
  owner: string;
  repo: string;
  name: string;
  head_sha: string;
  status?: string;
  conclusion?: string;
  details_url?: string;
  output: { title?: string; summary?: string; text?: string };
  annotations: Annotation[];
}

const LIMIT = 65535;
const MESSAGE_LIMIT = 64 * 1024;

export class GitHubApiStandin {
  mode: StandinMode = 'ok';
  readonly requests: RecordedRequest[] = [];
  readonly runs = new Map<number, StoredCheckRun>();
  private server?: Server;
  private nextId = 1000;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => this.send(res, 500, { message: String(e) }));
    });
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    const { port } = this.server.address() as { port: number };
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server!.close(() => ok()));
    this.server = undefined;
  }

  /** Every annotation a check run received, in arrival order. */
  annotations(id: number): Annotation[] {
    return this.runs.get(id)?.annotations ?? [];
  }

  private send(res: ServerResponse, status: number, body: unknown): number {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
    return status;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const rec: RecordedRequest = {
      method: req.method ?? '',
      path,
      authorization: req.headers.authorization,
      body,
      status: 0,
    };
    this.requests.push(rec);
    rec.status = this.route(req.method ?? '', path, body, req.headers.authorization, res);
  }

  private route(
    method: string,
    path: string,
    body: unknown,
    auth: string | undefined,
    res: ServerResponse,
  ): number {
    const create = /^\/repos\/([^/]+)\/([^/]+)\/check-runs$/.exec(path);
    const update = /^\/repos\/([^/]+)\/([^/]+)\/check-runs\/(\d+)$/.exec(path);
    if (!(create && method === 'POST') && !(update && method === 'PATCH'))
      return this.send(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
    if (!auth) return this.send(res, 401, { message: 'Requires authentication' });
    if (this.mode === 'server-error') return this.send(res, 500, { message: 'Server Error' });
    if (this.mode === 'read-only')
      return this.send(res, 403, {
        message: 'Resource not accessible by integration',
        documentation_url: 'https://docs.github.com/rest/checks/runs#create-a-check-run',
        status: '403',
      });
    const b = (body ?? {}) as Record<string, unknown> & { output?: Output };
    const invalid = this.validate(b, create !== null);
    if (invalid) return this.send(res, 422, invalid);
    if (create) {
      const [, owner, repo] = create;
      const id = this.nextId++;
      const run: StoredCheckRun = {
        id,
        owner: owner!,
        repo: repo!,
        name: b.name as string,
        head_sha: b.head_sha as string,
        ...(typeof b.status === 'string' ? { status: b.status } : {}),
        ...(typeof b.conclusion === 'string' ? { conclusion: b.conclusion } : {}),
        ...(typeof b.details_url === 'string' ? { details_url: b.details_url } : {}),
        output: {},
        annotations: [],
      };
      this.apply(run, b);
      this.runs.set(id, run);
      return this.send(res, 201, this.view(run));
    }
    const [, owner, repo, idText] = update!;
    const run = this.runs.get(Number(idText));
    if (!run || run.owner !== owner || run.repo !== repo)
      return this.send(res, 404, { message: 'Not Found' });
    this.apply(run, b);
    return this.send(res, 200, this.view(run));
  }

  private apply(run: StoredCheckRun, b: Record<string, unknown> & { output?: Output }): void {
    if (typeof b.status === 'string') run.status = b.status;
    if (typeof b.conclusion === 'string') run.conclusion = b.conclusion;
    const o = b.output;
    if (!o) return;
    run.output = {
      title: o.title as string,
      summary: o.summary as string,
      ...(typeof o.text === 'string' ? { text: o.text } : {}),
    };
    run.annotations.push(...(o.annotations ?? [])); // GitHub appends
  }

  private view(run: StoredCheckRun) {
    return {
      id: run.id,
      name: run.name,
      head_sha: run.head_sha,
      status: run.status,
      conclusion: run.conclusion ?? null,
      url: `${this.url}/repos/${run.owner}/${run.repo}/check-runs/${run.id}`,
      html_url: `https://github.com/${run.owner}/${run.repo}/runs/${run.id}`,
      details_url: run.details_url ?? null,
      output: { ...run.output, annotations_count: run.annotations.length },
    };
  }

  /** GitHub's 422 answers for what it rejects; undefined when the body is acceptable. */
  private validate(b: Record<string, unknown> & { output?: Output }, creating: boolean): object | undefined {
    const failed = (field: string, message: string) => ({
      message: 'Validation Failed',
      errors: [{ resource: 'CheckRun', code: 'custom', field, message }],
      status: '422',
    });
    if (creating && (typeof b.name !== 'string' || b.name === '')) return failed('name', 'name is missing');
    if (creating && (typeof b.head_sha !== 'string' || b.head_sha === ''))
      return failed('head_sha', 'head_sha is missing');
    if (b.status === 'completed' && typeof b.conclusion !== 'string')
      return failed('conclusion', 'conclusion is required when status is completed');
    const o = b.output;
    if (o === undefined) return undefined;
    if (typeof o.title !== 'string' || typeof o.summary !== 'string')
      return failed('output', 'output requires title and summary');
    for (const [field, v] of [
      ['summary', o.summary],
      ['text', o.text],
    ] as const) {
      if (typeof v !== 'string') continue;
      if (v.length > LIMIT)
        return {
          message: `Invalid request.\n\nOnly ${LIMIT} characters are allowed; ${v.length} were supplied.`,
          status: '422',
        };
      if (Buffer.byteLength(v) > LIMIT)
        return failed(field, `${field} exceeds a maximum bytesize of ${LIMIT}`);
    }
    const anns = o.annotations ?? [];
    if (anns.length > 50)
      return { message: 'Invalid request.\n\nOnly 50 annotations are allowed per request.', status: '422' };
    for (const a of anns) {
      if (
        typeof a.path !== 'string' ||
        a.path === '' ||
        typeof a.start_line !== 'number' ||
        typeof a.end_line !== 'number' ||
        typeof a.message !== 'string' ||
        !['notice', 'warning', 'failure'].includes(a.annotation_level as string)
      )
        return failed(
          'annotations',
          'annotation requires path, start_line, end_line, annotation_level, message',
        );
      if (Buffer.byteLength(a.message) > MESSAGE_LIMIT)
        return failed('annotations', `message exceeds a maximum bytesize of ${MESSAGE_LIMIT}`);
      if (typeof a.raw_details === 'string' && Buffer.byteLength(a.raw_details) > MESSAGE_LIMIT)
        return failed('annotations', `raw_details exceeds a maximum bytesize of ${MESSAGE_LIMIT}`);
      if (typeof a.title === 'string' && a.title.length > 255)
        return failed('annotations', 'title is too long (maximum is 255 characters)');
    }
    return undefined;
  }
}

export async function startGitHubApiStandin(): Promise<GitHubApiStandin> {
  return new GitHubApiStandin().start();
}
