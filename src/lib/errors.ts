/**
 * An error the user can fix. Its message is one line that says what was wrong and how to fix it;
 * `details` (optional) holds the longer story for a collapsed log group.
 */
export class UserError extends Error {
  readonly details?: string
  constructor(message: string, details?: string) {
    super(message)
    this.name = 'UserError'
    this.details = details
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError || (e instanceof Error && e.name === 'UserError')
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message
  return String(e)
}
