/** A failed invocation with the HTTP status the caller gets (404, 429, 502, 504, ...). */
export class InvocationError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'InvocationError';
  }
}
