#!/usr/bin/env node
import { main } from './main';

// `l2l list | head`: a closed pipe ends the output quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

// What escapes main (it should not): one line, the stack only with --verbose.
const verbose = process.argv.includes('--verbose');
function crash(e: unknown): void {
  const text = e instanceof Error ? (verbose ? (e.stack ?? e.message) : `${e.name}: ${e.message}`) : String(e);
  process.stderr.write(`internal error: ${text}${verbose ? '' : ' (run with --verbose for the stack trace)'}\n`);
  process.exit(3);
}
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, crash);
