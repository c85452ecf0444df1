/**
 * An error the user can fix (a bad config, a missing package, a plugin that throws). The CLI prints its
 * message alone on one line and exits 1; anything else is a bug and is reported with its stack.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof Error && (e instanceof UserError || e.name === 'UserError');
}
