import { describe, expect, it } from 'vitest';
import { parseAb } from '../src/original-seed.js';

// What ab 2.3 prints for 200 form posts answered 303 (abridged to the lines the bench reads and their neighbours).
const sample = `Benchmarking 127.0.0.1 (be patient).....done

Concurrency Level:      10
Time taken for tests:   0.090 seconds
Complete requests:      200
Failed requests:        3
   (Connect: 0, Receive: 0, Length: 3, Exceptions: 0)
Non-2xx responses:      197
Total transferred:      19000 bytes
Requests per second:    2234.36 [#/sec] (mean)
Time per request:       4.476 [ms] (mean)

Percentage of the requests served within a certain time (ms)
  50%      4
  66%      4
  98%     10
  99%     11
 100%     11 (longest request)
`;

describe("reading ab's report", () => {
  it('takes the request count, failures, non-2xx answers, rate and the p50 and p99', () => {
    expect(parseAb(sample)).toEqual({ complete: 200, failed: 3, non2xx: 197, requestsPerSecond: 2234.36, p50: 4, p99: 11 });
  });

  it('counts no non-2xx answers when ab prints no such line', () => {
    expect(parseAb(sample.replace(/^Non-2xx.*\n/m, '')).non2xx).toBe(0);
  });

  it('fails naming the figure ab did not print (e.g. it stopped early)', () => {
    expect(() => parseAb(sample.replace(/^Requests per second.*\n/m, ''))).toThrow(/Requests per second/);
    expect(() => parseAb(sample.replace(/^ {2}99%.*\n/m, ''))).toThrow(/99%/);
  });
});
