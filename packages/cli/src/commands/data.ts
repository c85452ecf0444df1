import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '@l2l/core';
import { CIFAR10_ARCHIVE, cifar10Files, readCifar10Files } from '@l2l/optimizees';
import type { CliContext } from '../context';
import { downloadFile, extractDirectory } from '../download';
import { createProgress } from '../progress';

/** A data set `l2l data download` can fetch: its archive, the directory inside it, and a check of the extracted files. */
interface Downloadable {
  url: string;
  md5: string;
  /** Directory the archive holds; it becomes `<dir>/<inner>`. */
  inner: string;
  /** Throws a UserError unless `dir` holds a complete, readable copy. */
  check(dir: string): void;
  /** How to use it once there. */
  usage(dir: string): string;
}

const DOWNLOADABLE: Record<string, Downloadable> = {
  cifar10: {
    url: CIFAR10_ARCHIVE.url,
    md5: CIFAR10_ARCHIVE.md5,
    inner: CIFAR10_ARCHIVE.dir,
    check: (dir) => {
      const files = cifar10Files(dir);
      readCifar10Files([...files.train, files.test]);
    },
    usage: (dir) => `"dataset": "cifar10", "path": ${JSON.stringify(dir)}`,
  },
};

/** Bytes as `12.3 MB`. */
function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** `l2l data download <name> [--dir]`: fetch a data set that is not bundled. */
export function registerData(program: Command, ctx: CliContext): void {
  const data = program.command('data').summary('download data sets that are not bundled (CIFAR-10)').description('Manage data sets that are not bundled with l2l.');
  data
    .command('download')
    .summary('download and unpack a data set (cifar10)')
    .description(
      'Download a data set\'s official archive, verify its published MD5 checksum, and unpack it into <dir>/<its directory> ' +
        '(CIFAR-10: <dir>/cifar-10-batches-bin). Nothing is left behind when the transfer, the checksum or the extraction fails. ' +
        'MNIST is bundled; Fashion-MNIST comes from `apt-get install dataset-fashion-mnist`.',
    )
    .argument('<name>', `data set: ${Object.keys(DOWNLOADABLE).join(', ')}`)
    .option('--dir <dir>', 'directory to unpack into', 'data')
    .option('--url <url>', 'fetch the archive from this mirror instead of the official address')
    .option('--md5 <hex>', 'expected MD5 of the archive (with --url, when the mirror serves a different file)')
    .addHelpText('after', ['', 'Examples:', '  $ l2l data download cifar10', '  $ l2l data download cifar10 --dir ~/datasets'].join('\n'))
    .action(async (name: string, opts: { dir: string; url?: string; md5?: string }) => {
      const spec = DOWNLOADABLE[name];
      if (!spec) throw new UserError(`data download: unknown data set ${JSON.stringify(name)}; one of ${Object.keys(DOWNLOADABLE).join(', ')}`);
      if (opts.md5 !== undefined && !/^[0-9a-fA-F]{32}$/.test(opts.md5)) throw new UserError(`data download: --md5 must be 32 hex digits, got ${JSON.stringify(opts.md5)}`);
      const dir = path.resolve(ctx.cwd, opts.dir);
      const target = path.join(dir, spec.inner);
      if (fs.existsSync(target)) {
        try {
          spec.check(target);
        } catch (e) {
          throw new UserError(`${target}: exists but is incomplete or damaged (${(e as Error).message}); remove it and run the command again`, { cause: e });
        }
        ctx.out(`${name}: already in ${target}`);
        ctx.out(`use it with ${spec.usage(target)}`);
        return;
      }
      fs.mkdirSync(dir, { recursive: true });
      const url = opts.url ?? spec.url;
      const archive = path.join(dir, `.${name}-${path.basename(new URL(url).pathname) || 'archive'}`);
      ctx.err(`downloading ${url}`);
      let bar: ReturnType<typeof createProgress> | undefined;
      try {
        await downloadFile(url, archive, opts.md5 ?? spec.md5, (received, total) => {
          bar ??= createProgress(ctx, total ?? 0, `${name} [{bar}] {percentage}% | {got} of {size}`);
          bar.update(received, { got: mb(received), size: total === null ? '?' : mb(total) });
        });
      } finally {
        bar?.stop();
      }
      ctx.err('checksum ok; unpacking');
      try {
        await extractDirectory(archive, spec.inner, target, spec.check);
      } finally {
        fs.rmSync(archive, { force: true });
      }
      ctx.out(`${name}: unpacked to ${target}`);
      ctx.out(`use it with ${spec.usage(target)}`);
    });
}
