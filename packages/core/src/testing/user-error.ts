import { isUserError } from '../errors';
import { ContractError } from './util';

function messageOf(e: unknown): string {
  if (isUserError(e)) return e.message;
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  throw new ContractError(`userErrorMessage: expected a UserError (one line for the user), got ${what}`);
}

function nothingThrown(): never {
  throw new ContractError('userErrorMessage: expected a UserError, but nothing was thrown');
}

/**
 * The message of the `UserError` that `fn` throws, or that the promise it returns rejects with: for testing that a
 * component's bad input gives the one-line error the CLI prints (`expect(userErrorMessage(() => create({ rate: -1 })))
 * .toBe('...')`). Throws a `ContractError` where nothing is thrown or the error is not a `UserError` (which the CLI
 * would report with a stack trace).
 */
export function userErrorMessage(fn: () => Promise<unknown>): Promise<string>;
export function userErrorMessage(fn: () => unknown): string;
export function userErrorMessage(fn: () => unknown): string | Promise<string> {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    return messageOf(e);
  }
  if (result instanceof Promise) return result.then(nothingThrown, messageOf);
  return nothingThrown();
}
