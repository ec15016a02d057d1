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

/**
 * The call never ran on the instance meant: nothing listens at its address any more, another
 * instance does now (addresses are reused at once), or it is stopping. The call may go elsewhere.
 */
export class InstanceGoneError extends InvocationError {
  constructor(
    readonly instance: string,
    why: string,
  ) {
    super(502, `instance ${instance} is gone: ${why}`);
    this.name = 'InstanceGoneError';
  }
}
