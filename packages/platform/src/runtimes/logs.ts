import { Writable } from 'node:stream';

export interface LogLine {
  /** When the gateway received the line (ISO 8601). */
  timestamp: string;
  instance: string;
  text: string;
}

/**
 * The last lines each function's instances wrote (stdout of warm instances, stderr of all),
 * kept in memory so `GET /system/logs` and `fn logs` work whatever the runtime keeps itself.
 * Every line is also written through to the gateway's own output, as before.
 */
export class FunctionLogs {
  private readonly lines = new Map<string, LogLine[]>();

  constructor(private readonly keep = 1_000) {}

  add(fn: string, instance: string, text: string): void {
    let lines = this.lines.get(fn);
    if (!lines) this.lines.set(fn, (lines = []));
    lines.push({ timestamp: new Date().toISOString(), instance, text });
    if (lines.length > this.keep) lines.splice(0, lines.length - this.keep);
  }

  tail(fn: string, count: number): LogLine[] {
    return (this.lines.get(fn) ?? []).slice(-count);
  }

  /** A stream that records each line from an instance and passes it on to `echo`. */
  sink(fn: string, instance: string, echo: NodeJS.WritableStream = process.stderr): Writable {
    let partial = '';
    const record = (text: string) => {
      if (text.length > 0) this.add(fn, instance, text.length > 8_192 ? `${text.slice(0, 8_192)}…` : text);
    };
    return new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        echo.write(chunk);
        const parts = (partial + chunk.toString('utf8')).split('\n');
        partial = parts.pop() ?? '';
        parts.forEach(record);
        done();
      },
      final: (done) => {
        record(partial);
        done();
      },
    });
  }
}
