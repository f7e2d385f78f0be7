/**
 * A failure whose message is written for the person at the terminal: the CLI prints it as it is,
 * without a stack trace, and exits with `exitCode`.
 */
export class UserFacingError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}
