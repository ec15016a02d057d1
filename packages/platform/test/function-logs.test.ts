import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FunctionLogs, LINE_CUT_MARK, LineSplitter, MAX_LOG_LINE } from '../src/runtimes/logs.js';

const MB = 1024 * 1024;
const chunk = 'x'.repeat(64 * 1024);
/** Where a sink's echo goes in these tests: nowhere. */
const nowhere = () => new Writable({ write: (_chunk, _encoding, done) => done() });
const write = (stream: Writable, text: string | Buffer) =>
  new Promise<void>((resolve, reject) => stream.write(text, (error) => (error ? reject(error) : resolve())));

describe("a function's log lines", () => {
  // Break it catches: a line without a newline held whole until one comes (10 MB of memory per
  // instance writing one, growing without bound).
  it('hold at most the longest kept line of a line not ended, however much comes without a newline', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((text) => lines.push(text));
    let mostHeld = 0;
    for (let written = 0; written < 10 * MB; written += chunk.length) {
      splitter.push(chunk);
      mostHeld = Math.max(mostHeld, splitter.buffered);
    }
    expect(mostHeld).toBeLessThanOrEqual(MAX_LOG_LINE);
    splitter.push('\nnext line\nlast, not ended');
    splitter.end();
    expect(lines).toEqual([`${'x'.repeat(MAX_LOG_LINE)}${LINE_CUT_MARK}`, 'next line', 'last, not ended']);
    expect(splitter.buffered).toBe(0);
  });

  // Break it catches: the sink keeping the whole line (or every piece of it) rather than one cut line.
  it('come out of the sink cut, and the lines after it whole', async () => {
    const logs = new FunctionLogs();
    const sink = logs.sink('fn', 'instance-1', nowhere());
    await write(sink, 'before\n');
    for (let written = 0; written < 10 * MB; written += chunk.length) await write(sink, chunk);
    await write(sink, '\nafter\n');
    // A character split between two writes stays one character.
    const accented = Buffer.from('é\n');
    await write(sink, accented.subarray(0, 1));
    await write(sink, accented.subarray(1));
    await new Promise<void>((resolve) => sink.end(resolve));
    const texts = logs.tail('fn', 10).map((line) => line.text);
    expect(texts).toEqual(['before', `${'x'.repeat(MAX_LOG_LINE)}${LINE_CUT_MARK}`, 'after', 'é']);
  });
});

describe("a function's log lines echoed with a format", () => {
  // Break it catches: the echo passing the instance's chunks on as they come, ignoring the format
  // (JSON lines on a terminal where readable ones were asked for).
  it('are echoed rewritten, one whole line at a time, and kept as they came', async () => {
    const logs = new FunctionLogs(undefined, (line) => `<${line}>\n`);
    let echoed = '';
    const echo = new Writable({
      write: (piece, _encoding, done) => {
        echoed += piece;
        done();
      },
    });
    const sink = logs.sink('fn', 'instance-1', echo);
    await write(sink, '{"msg":"one"}\n{"msg":');
    await write(sink, '"two"}\nplain\n');
    expect(echoed).toBe('<{"msg":"one"}>\n<{"msg":"two"}>\n<plain>\n');
    expect(logs.tail('fn', 10).map((line) => line.text)).toEqual(['{"msg":"one"}', '{"msg":"two"}', 'plain']);
  });
});
