import { InvalidArgumentError, Option } from 'commander';
import { BACKEND_CHOICES } from '@l2l/core';

/** A count on the command line: decimal digits only (no `0x10`, `1e3`, `+5` or spaces), at least 1. */
export function positiveInt(value: string): number {
  if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError('must be an integer ≥ 1 written in decimal digits');
  const n = Number(value);
  if (n < 1 || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be an integer ≥ 1 (and below 2^53)');
  return n;
}

/** A count that may be zero, in decimal digits only. */
export function nonNegativeInt(value: string): number {
  if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError('must be an integer ≥ 0 written in decimal digits');
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('must be an integer ≥ 0 (and below 2^53)');
  return n;
}

/** `--backend`, checked by commander (an unknown backend is a malformed command line: exit 2). */
export function backendOption(): Option {
  return new Option('--backend <backend>', 'tfjs backend, overriding the config').choices([...BACKEND_CHOICES]);
}
