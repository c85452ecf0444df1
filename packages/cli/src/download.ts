/**
 * Fetching and unpacking a data set archive without ever leaving a half-made data set: the archive
 * goes to a `.part` file that is verified (length and MD5) before anything is extracted, extraction
 * goes to a scratch directory next to the target, and only a complete, checked result is renamed into
 * place. Any failure removes what it made.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { UserError } from '@l2l/core';

export interface DownloadProgress {
  /** Called as bytes arrive; `total` is null when the server sends no Content-Length. */
  (received: number, total: number | null): void;
}

/**
 * Downloads `url` to `dest` (through `dest.part`) and checks its MD5 against `md5` (lower-case hex).
 * A failed request, a transfer cut short, or a checksum mismatch is a UserError naming the URL, and
 * leaves neither `dest` nor the partial file.
 */
export async function downloadFile(url: string, dest: string, md5: string, onProgress: DownloadProgress = () => undefined): Promise<void> {
  const part = `${dest}.part`;
  const hash = createHash('md5');
  let received = 0;
  let total: number | null = null;
  let out: fs.WriteStream | undefined;
  try {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new UserError(`${url}: download failed (${describe(e)})`, { cause: e });
    }
    if (!res.ok || !res.body) throw new UserError(`${url}: download failed (HTTP ${res.status} ${res.statusText})`);
    const length = res.headers.get('content-length');
    total = length !== null && /^\d+$/.test(length) ? Number(length) : null;
    onProgress(0, total);
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        received += chunk.length;
        hash.update(chunk);
        onProgress(received, total);
        done(null, chunk);
      },
    });
    try {
      out = fs.createWriteStream(part);
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), count, out);
    } catch (e) {
      throw new UserError(`${url}: download interrupted after ${received}${total === null ? '' : ` of ${total}`} bytes (${describe(e)}); nothing was kept, run the command again`, { cause: e });
    }
    if (total !== null && received !== total) {
      throw new UserError(`${url}: download interrupted after ${received} of ${total} bytes; nothing was kept, run the command again`);
    }
    const got = hash.digest('hex');
    if (got !== md5.toLowerCase()) {
      throw new UserError(`${url}: MD5 checksum mismatch (expected ${md5.toLowerCase()}, got ${got}); the file is corrupt or not the published archive, nothing was kept`);
    }
    fs.renameSync(part, dest);
  } finally {
    // A failed pipeline destroys the file stream, whose open may still be under way: wait until it is closed,
    // or the file would appear after the removal below.
    const stream = out;
    if (stream && !stream.closed) await new Promise<void>((resolve) => stream.once('close', () => resolve()).destroy());
    fs.rmSync(part, { force: true });
  }
}

function describe(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err?.cause?.code ?? err?.cause?.message;
  return cause ? `${err.message}: ${cause}` : (err?.message ?? String(e));
}

/**
 * Extracts the gzipped tarball `archive` and moves its directory `inner` to `target`, after `check`
 * accepts the extracted copy. `target` must not exist. On any failure nothing is left at `target`.
 */
export async function extractDirectory(archive: string, inner: string, target: string, check: (dir: string) => void): Promise<void> {
  if (fs.existsSync(target)) throw new UserError(`${target}: already exists; remove it first`);
  const parent = path.dirname(target);
  fs.mkdirSync(parent, { recursive: true });
  const scratch = fs.mkdtempSync(path.join(parent, `.${path.basename(target)}-extract-`));
  try {
    try {
      // strict: a corrupt or truncated archive is an error, not a warning; node-tar refuses paths outside cwd.
      await tar.x({ file: archive, cwd: scratch, strict: true });
    } catch (e) {
      throw new UserError(`${archive}: cannot extract (${(e as Error).message})`, { cause: e });
    }
    const extracted = path.join(scratch, inner);
    if (!fs.existsSync(extracted) || !fs.statSync(extracted).isDirectory()) {
      throw new UserError(`${archive}: holds no directory ${inner}/ (is it the right archive?)`);
    }
    check(extracted);
    fs.renameSync(extracted, target);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
