import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkCallbackUrl, classifyAddress, hostAllowed, parseHostPattern, type AddressKind, type Resolver } from '@platform/core/callback-url';
import { InvocationError } from '@platform/core/errors';
import { loadConfig } from '../src/config.js';

// The rules as pure functions: nothing here opens a connection, and names are resolved by
// injected resolvers. The expected kinds are this file's own table, not the library's.

const toInt = (ip: string) => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
const toDotted = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

const refusedV4: Array<[string, number, AddressKind]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.168.0.0', 16, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'reserved'],
  ['192.31.196.0', 24, 'reserved'],
  ['192.52.193.0', 24, 'reserved'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.175.48.0', 24, 'reserved'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
  ['255.255.255.255', 32, 'broadcast'],
];
const size = (bits: number) => 2 ** (32 - bits);
const inRange = (n: number, [base, bits]: [string, number, AddressKind]) => n >= toInt(base) && n < toInt(base) + size(bits);
/** The expected kind of an IPv4 address, from the table (the broadcast address is inside 240/4). */
const expectedV4 = (n: number): AddressKind => (n === 0xffffffff ? 'broadcast' : (refusedV4.find((r) => inRange(n, r))?.[2] ?? 'public'));

const refusedV4Address = fc
  .constantFrom(...refusedV4)
  .chain((range) => fc.integer({ min: 0, max: size(range[1]) - 1 }).map((offset) => toInt(range[0]) + offset));
const publicV4Address = fc.integer({ min: 0, max: 0xffffffff }).filter((n) => expectedV4(n) === 'public');

const hex16 = (n: number) => n.toString(16);
const v4Tail = (n: number) => `${hex16(n >>> 16)}:${hex16(n & 0xffff)}`;

async function refusal(value: string, options: Parameters<typeof checkCallbackUrl>[1] = {}): Promise<InvocationError> {
  const error = await checkCallbackUrl(value, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `${value} should be refused`).toBeInstanceOf(InvocationError);
  expect((error as InvocationError).status).toBe(400);
  return error as InvocationError;
}

describe('classifyAddress, IPv4', () => {
  it('refuses every address of every refused range, with its kind, first and last included', () => {
    for (const range of refusedV4) {
      const first = toInt(range[0]);
      for (const n of [first, first + size(range[1]) - 1]) expect(classifyAddress(toDotted(n)).kind, toDotted(n)).toBe(expectedV4(n));
    }
    fc.assert(
      fc.property(refusedV4Address, (n) => {
        expect(classifyAddress(toDotted(n)).kind).toBe(expectedV4(n));
        expect(expectedV4(n)).not.toBe('public');
      }),
      { numRuns: 2_000 },
    );
  });

  it('allows public addresses, as literals in a callback URL too', async () => {
    fc.assert(
      fc.property(publicV4Address, (n) => {
        expect(classifyAddress(toDotted(n))).toEqual({ kind: 'public' });
      }),
      { numRuns: 2_000 },
    );
    await fc.assert(
      fc.asyncProperty(publicV4Address, async (n) => {
        const target = await checkCallbackUrl(`http://${toDotted(n)}:8080/done`);
        expect(target).toMatchObject({ address: toDotted(n), family: 4 });
      }),
      { numRuns: 200 },
    );
  });

  it('names the address and its kind when it refuses one', async () => {
    expect((await refusal('http://127.0.0.1:9000/')).message).toBe(
      'X-Callback-Url points to 127.0.0.1, a loopback address: callbacks may only go to public addresses or to hosts in CALLBACK_ALLOWED_HOSTS',
    );
    expect((await refusal('http://169.254.169.254/latest/meta-data/')).message).toMatch(/169\.254\.169\.254, a link-local address/);
    expect((await refusal('http://0.0.0.0:2375/')).message).toMatch(/0\.0\.0\.0, an unspecified address/);
    expect((await refusal('http://100.100.100.200/')).message).toMatch(/a carrier-grade NAT address/);
  });
});

describe('classifyAddress, IPv6', () => {
  const group = fc.integer({ min: 0, max: 0xffff }).map(hex16);
  const groups = (n: number) => fc.array(group, { minLength: n, maxLength: n }).map((g) => g.join(':'));

  it('refuses loopback, unspecified, link-local, unique local, site-local and multicast', () => {
    expect(classifyAddress('::1').kind).toBe('loopback');
    expect(classifyAddress('[::1]').kind).toBe('loopback');
    expect(classifyAddress('::').kind).toBe('unspecified');
    expect(classifyAddress('fe80::1%eth0').kind).toBe('link-local');
    const cases: Array<[fc.Arbitrary<string>, AddressKind]> = [
      [fc.tuple(fc.integer({ min: 0xfe80, max: 0xfebf }), groups(7)).map(([h, t]) => `${hex16(h)}:${t}`), 'link-local'],
      [fc.tuple(fc.integer({ min: 0xfc00, max: 0xfdff }), groups(7)).map(([h, t]) => `${hex16(h)}:${t}`), 'private'],
      [fc.tuple(fc.integer({ min: 0xfec0, max: 0xfeff }), groups(7)).map(([h, t]) => `${hex16(h)}:${t}`), 'private'],
      [fc.tuple(fc.integer({ min: 0xff00, max: 0xffff }), groups(7)).map(([h, t]) => `${hex16(h)}:${t}`), 'multicast'],
    ];
    for (const [addresses, kind] of cases)
      fc.assert(
        fc.property(addresses, (a) => {
          expect(classifyAddress(a).kind).toBe(kind);
        }),
        { numRuns: 500 },
      );
  });

  it('classifies the IPv4 address inside mapped, translated, compatible, NAT64 and 6to4 forms', () => {
    fc.assert(
      fc.property(fc.oneof(refusedV4Address, publicV4Address), (n) => {
        const v4 = toDotted(n);
        const kind = expectedV4(n);
        const forms = [`::ffff:${v4}`, `::ffff:${v4Tail(n)}`, `::ffff:0:${v4}`, `64:ff9b::${v4}`, `64:ff9b::${v4Tail(n)}`, `2002:${v4Tail(n)}::1`];
        // ::0.0.0.0 and ::0.0.0.1 are :: and ::1 themselves.
        if (n > 1) forms.push(`::${v4}`);
        for (const form of forms) expect(classifyAddress(form), form).toEqual({ kind, ipv4: v4 });
      }),
      { numRuns: 2_000 },
    );
  });

  it('allows global unicast only, nothing documentation, tunnelled or unassigned', () => {
    const special = ['2001:0', '2001:1', '2001:db8', '3fff', '2620:4f:8000'];
    const reservedGlobal = ([h, g2, g3]: number[]) =>
      (h === 0x2001 && (g2! < 0x200 || g2 === 0xdb8)) || h === 0x2002 || (h === 0x3fff && g2! < 0x1000) || (h === 0x2620 && g2 === 0x4f && g3 === 0x8000);
    const global = fc
      .tuple(fc.integer({ min: 0x2000, max: 0x3fff }), fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 7, maxLength: 7 }))
      .map(([h, rest]) => [h, ...rest])
      .filter((parts) => !reservedGlobal(parts))
      .map((parts) => parts.map(hex16).join(':'));
    fc.assert(
      fc.property(global, (a) => {
        expect(classifyAddress(a).kind, a).toBe('public');
      }),
      { numRuns: 2_000 },
    );
    for (const prefix of special) expect(classifyAddress(`${prefix}::1`).kind, prefix).toBe('reserved');
    // 6to4 carries its IPv4 address: 2002:: is 0.0.0.0's.
    expect(classifyAddress('2002::1')).toEqual({ kind: 'unspecified', ipv4: '0.0.0.0' });
    fc.assert(
      fc.property(fc.tuple(fc.integer({ min: 0x4000, max: 0xfbff }), groups(7)), ([h, t]) => {
        expect(classifyAddress(`${hex16(h)}:${t}`).kind).toBe('reserved');
      }),
      { numRuns: 500 },
    );
    expect(classifyAddress('64:ff9b:1::a00:1').kind).toBe('reserved');
  });

  it('refuses the bracketed forms in callback URLs, zone ids included', async () => {
    expect((await refusal('http://[::ffff:127.0.0.1]:9000/')).message).toMatch(/points to ::ffff:7f00:1 \(IPv4 127\.0\.0\.1\), a loopback address/);
    expect((await refusal('http://[::ffff:7f00:1]/')).message).toMatch(/a loopback address/);
    expect((await refusal('http://[::]/')).message).toMatch(/points to ::, an unspecified address/);
    expect((await refusal('http://[::1]:2375/')).message).toMatch(/points to ::1, a loopback address/);
    expect((await refusal('http://[fe80::1]/')).message).toMatch(/a link-local address/);
    expect((await refusal('http://[fd00::1]/')).message).toMatch(/a private address/);
    expect((await refusal('http://[64:ff9b::10.1.2.3]/')).message).toMatch(/\(IPv4 10\.1\.2\.3\), a private address/);
    expect((await refusal('http://[64:ff9b::a9fe:a9fe]/')).message).toMatch(/\(IPv4 169\.254\.169\.254\), a link-local address/);
    // WHATWG URLs have no zone ids: such a URL is not a URL at all.
    expect((await refusal('http://[fe80::1%25eth0]/')).message).toBe('X-Callback-Url is not a valid URL');
    await expect(checkCallbackUrl('http://[64:ff9b::8.8.8.8]/')).resolves.toMatchObject({ address: '64:ff9b::808:808', family: 6 });
  });
});

describe('numeric host forms, as WHATWG URLs read them', () => {
  it('turns the documented examples into 127.0.0.1, and refuses them', async () => {
    for (const host of ['2130706433', '0177.0.0.1', '0x7f.1', '127.1', '0x7f000001', '017700000001', '127.0.0.1.', '0x7F.0.0.01']) {
      expect(new URL(`http://${host}/`).hostname, host).toBe('127.0.0.1');
      expect((await refusal(`http://${host}:9000/`)).message).toMatch(/points to 127\.0\.0\.1, a loopback address/);
    }
    expect(new URL('http://0/').hostname).toBe('0.0.0.0');
  });

  it('reads every decimal, hex, octal and short form of a refused address as that address', async () => {
    const forms = (n: number) => {
      const [a, b, c, d] = toDotted(n).split('.').map(Number) as [number, number, number, number];
      return [
        String(n),
        `0x${n.toString(16)}`,
        `0${n.toString(8)}`,
        [a, b, c, d].map((x) => `0x${x.toString(16)}`).join('.'),
        [a, b, c, d].map((x) => `0${x.toString(8)}`).join('.'),
        `${a}.${b}.${c * 256 + d}`,
        `${a}.${(b << 16) + (c << 8) + d}`,
        `${a}.0x${((b << 16) + (c << 8) + d).toString(16)}`,
      ];
    };
    await fc.assert(
      fc.asyncProperty(refusedV4Address, async (n) => {
        for (const form of forms(n)) {
          expect(new URL(`http://${form}/`).hostname, form).toBe(toDotted(n));
          expect((await refusal(`http://${form}/`)).message).toContain(`points to ${toDotted(n)}, `);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('allowed hosts', () => {
  it('matches host:port patterns on that port only, host patterns on any port, default ports included', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65_535 }), fc.integer({ min: 1, max: 65_535 }), (p, q) => {
        const url = new URL(`http://127.0.0.1:${p}/done`);
        expect(hostAllowed(url, [`127.0.0.1:${p}`])).toBe(true);
        expect(hostAllowed(url, [`127.0.0.1:${q}`])).toBe(p === q || (p === 80 && q === 80));
        expect(hostAllowed(url, ['127.0.0.1'])).toBe(true);
        expect(hostAllowed(url, [`127.0.0.2:${p}`, 'localhost'])).toBe(false);
      }),
    );
    expect(hostAllowed(new URL('https://hooks.example.com/x'), ['hooks.example.com:443'])).toBe(true);
    expect(hostAllowed(new URL('http://hooks.example.com/x'), ['hooks.example.com:443'])).toBe(false);
    expect(hostAllowed(new URL('http://hooks.example.com/x'), ['HOOKS.Example.COM:80'])).toBe(true);
    // Patterns are normalised as URLs are: one address, one pattern, whatever its spelling.
    expect(hostAllowed(new URL('http://2130706433:9000/'), ['127.1:9000'])).toBe(true);
    expect(hostAllowed(new URL('http://[::1]:9000/'), ['[0:0::1]:9000'])).toBe(true);
    expect(hostAllowed(new URL('http://[::1]:9001/'), ['[::1]:9000'])).toBe(false);
  });

  it('matches *.domain patterns on subdomains only', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 3 }), (labels) => {
        const sub = labels.join('.');
        expect(hostAllowed(new URL(`https://${sub}.example.com/`), ['*.example.com'])).toBe(true);
        expect(hostAllowed(new URL(`https://${sub}.example.com:8443/`), ['*.example.com:8443'])).toBe(true);
        expect(hostAllowed(new URL(`https://${sub}.example.com:8443/`), ['*.example.com:443'])).toBe(false);
        expect(hostAllowed(new URL(`https://${sub}example.com/`), ['*.example.com'])).toBe(false);
        expect(hostAllowed(new URL(`https://example.com.${sub}.net/`), ['*.example.com'])).toBe(false);
      }),
    );
    expect(hostAllowed(new URL('https://example.com/'), ['*.example.com'])).toBe(false);
  });

  it('rejects what is not a host pattern', () => {
    for (const bad of ['', '*', '*.', 'http://x', 'a/b', 'user@host', 'x:0', 'x:65536', 'x:y', '*.10.0.0.1', '::1', 'a b', '*.*.example.com']) {
      expect(() => parseHostPattern(bad), bad).toThrow(/not a host/);
    }
    expect(parseHostPattern(' Hooks.Example.com:9000 ')).toEqual({ host: 'hooks.example.com', wildcard: false, port: 9000 });
    expect(parseHostPattern('*.example.com')).toEqual({ host: 'example.com', wildcard: true });
  });

  it('come from CALLBACK_ALLOWED_HOSTS, empty by default, checked at start', () => {
    expect(loadConfig({}).CALLBACK_ALLOWED_HOSTS).toEqual([]);
    expect(loadConfig({ CALLBACK_ALLOWED_HOSTS: '127.0.0.1:9000, hooks.example.com,*.example.com,' }).CALLBACK_ALLOWED_HOSTS).toEqual([
      '127.0.0.1:9000',
      'hooks.example.com',
      '*.example.com',
    ]);
    expect(() => loadConfig({ CALLBACK_ALLOWED_HOSTS: 'http://hooks.example.com/' })).toThrow(/CALLBACK_ALLOWED_HOSTS: use host names/);
  });
});

describe('checkCallbackUrl with names', () => {
  const resolver =
    (table: Record<string, string[]>): Resolver =>
    async (name) => {
      const found = table[name];
      if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
      return found;
    };
  const resolve = resolver({
    'public.test': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    'loop.test': ['127.0.0.1'],
    'mixed.test': ['93.184.215.14', '10.0.0.7'],
    'mapped.test': ['::ffff:169.254.169.254'],
    'empty.test': [],
  });

  it('answers the first address of a public name, to connect to it and nothing else', async () => {
    const target = await checkCallbackUrl('https://public.test/hook?x=1', { resolve });
    expect(target).toMatchObject({ address: '93.184.215.14', family: 4 });
    expect(target.url.toString()).toBe('https://public.test/hook?x=1');
  });

  // One answer whether a name does not resolve or resolves to a refused address (callback-lookup.test.ts).
  it('refuses a name with any refused address, telling neither the address nor its kind', async () => {
    const refusedHost = (host: string) =>
      `X-Callback-Url's host ${host} is refused: callbacks may only go to names that resolve to public addresses only, or to hosts in CALLBACK_ALLOWED_HOSTS`;
    expect((await refusal('http://loop.test:9000/', { resolve })).message).toBe(refusedHost('loop.test'));
    expect((await refusal('http://mixed.test/', { resolve })).message).toBe(refusedHost('mixed.test'));
    expect((await refusal('http://mapped.test/', { resolve })).message).toBe(refusedHost('mapped.test'));
    expect((await refusal('http://mapped.test/', { resolve })).message).not.toMatch(/169\.254|link-local/);
  });

  it('refuses names that do not resolve', async () => {
    expect((await refusal('http://nowhere.test/', { resolve })).message).toMatch(/^X-Callback-Url's host nowhere\.test is refused: /);
    expect((await refusal('http://empty.test/', { resolve })).message).toMatch(/^X-Callback-Url's host empty\.test is refused: /);
  });

  it('lets allowed hosts through whatever their address, still pinned to it', async () => {
    await expect(checkCallbackUrl('http://loop.test:9000/', { resolve, allowedHosts: ['loop.test:9000'] })).resolves.toMatchObject({ address: '127.0.0.1' });
    await expect(checkCallbackUrl('http://127.0.0.1:9000/', { resolve, allowedHosts: ['127.0.0.1:9000'] })).resolves.toMatchObject({ address: '127.0.0.1' });
    await refusal('http://loop.test:9001/', { resolve, allowedHosts: ['loop.test:9000'] });
    await refusal('http://127.0.0.1:9001/', { resolve, allowedHosts: ['127.0.0.1:9000', '*.loop.test'] });
  });

  it('sees a name that changed its address after it was accepted', async () => {
    let answers = [['93.184.215.14'], ['127.0.0.1']];
    const rebinding: Resolver = async () => answers.shift()!;
    await expect(checkCallbackUrl('http://rebind.test/', { resolve: rebinding })).resolves.toMatchObject({ address: '93.184.215.14' });
    expect((await refusal('http://rebind.test/', { resolve: rebinding })).message).toMatch(/host rebind\.test is refused/);
    answers = [];
  });

  it('takes http and https URLs only', async () => {
    for (const bad of ['ftp://x', 'file:///etc/passwd', 'gopher://127.0.0.1:6379/_', 'javascript:alert(1)']) {
      expect((await refusal(bad)).message).toBe('X-Callback-Url must be an http or https URL');
    }
    expect((await refusal('not a url')).message).toBe('X-Callback-Url is not a valid URL');
  });
});
