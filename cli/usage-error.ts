/** Bad input on the command line: the message says what to fix. A leaf module, so every CLI file may throw it. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
