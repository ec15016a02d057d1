import { StringDecoder } from 'node:string_decoder';
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

  constructor(
    private readonly keep = 1_000,
    /** Echoes each line rewritten (whole lines then, not chunks as they come); unset: the output as it is. */
    private readonly format?: (line: string) => string,
  ) {}

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
    const format = this.format;
    const lines = new LineSplitter((text) => {
      this.add(fn, instance, text);
      if (format) echo.write(format(text));
    });
    // Whole characters only: a chunk may end inside one.
    const decoder = new StringDecoder('utf8');
    return new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        if (!format) echo.write(chunk);
        lines.push(decoder.write(chunk));
        done();
      },
      final: (done) => {
        lines.push(decoder.end());
        lines.end();
        done();
      },
    });
  }
}

/** Longest line kept, in characters: a longer one is kept cut, ending in LINE_CUT_MARK. */
export const MAX_LOG_LINE = 8_192;
export const LINE_CUT_MARK = '… [line cut]';

/**
 * Splits text written in pieces into its non-empty lines. A line not ended yet is held up to
 * `max` characters: beyond, it is given out cut at once and the rest of it dropped up to its
 * newline, so a function writing without newlines cannot grow the gateway's memory.
 */
export class LineSplitter {
  private partial = '';
  /** The current line was given out cut: what remains of it is dropped. */
  private cut = false;

  constructor(
    private readonly onLine: (text: string) => void,
    readonly max = MAX_LOG_LINE,
  ) {}

  /** Characters held of the line not ended yet (never more than `max`). */
  get buffered(): number {
    return this.partial.length;
  }

  push(text: string): void {
    for (let start = 0; ; ) {
      const end = text.indexOf('\n', start);
      this.take(text, start, end < 0 ? text.length : end);
      if (end < 0) return;
      this.end();
      start = end + 1;
    }
  }

  /** The text given so far ends a line (the end of the stream). */
  end(): void {
    if (!this.cut && this.partial.length > 0) this.onLine(this.partial);
    this.partial = '';
    this.cut = false;
  }

  private take(text: string, start: number, end: number): void {
    if (this.cut || start === end) return;
    const room = this.max - this.partial.length;
    if (end - start <= room) {
      this.partial += text.slice(start, end);
      return;
    }
    this.onLine(`${this.partial}${text.slice(start, start + room)}${LINE_CUT_MARK}`);
    this.partial = '';
    this.cut = true;
  }
}
