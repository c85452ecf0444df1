/* Helpers shared by this package's spec files (not built into dist). */
import { isUserError } from '@l2l/core';

/** Runs `fn`, expects it to throw a UserError, and returns that error (for its message). */
export function userError(fn: () => unknown): Error {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isUserError(caught)).toBe(true);
  return caught as Error;
}
