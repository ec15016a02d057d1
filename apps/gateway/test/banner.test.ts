import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { appProcess, waitUntil } from '@platform/test-services';
import { networkAddresses, publicVoteUrl, startBanner } from '../src/banner.js';

const iface = (address: string, family: 'IPv4' | 'IPv6', internal = false) => ({ address, family, internal, netmask: '', mac: '', cidr: null }) as never;
const interfaces = {
  lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
  wlan0: [iface('192.168.1.23', 'IPv4'), iface('fe80::1', 'IPv6'), iface('2001:db8::5', 'IPv6')],
  eth1: [iface('10.0.0.7', 'IPv4')],
};

describe('the start banner', () => {
  it('lists the network addresses, IPv4 first, nothing internal or link-local', () => {
    expect(networkAddresses(interfaces)).toEqual(['192.168.1.23', '10.0.0.7', '[2001:db8::5]']);
  });

  it('gives the room the vote URL: PUBLIC_URL when set, else the first network address, else the listening host', () => {
    expect(publicVoteUrl({ publicUrl: 'https://vote.example.test/', host: '0.0.0.0', port: 8080, interfaces })).toBe('https://vote.example.test/');
    expect(publicVoteUrl({ host: '0.0.0.0', port: 8080, interfaces })).toBe('http://192.168.1.23:8080/');
    expect(publicVoteUrl({ host: '0.0.0.0', port: 8080, interfaces: { lo: interfaces.lo } })).toBe('http://localhost:8080/');
    expect(publicVoteUrl({ host: '127.0.0.1', port: 8080, interfaces })).toBe('http://127.0.0.1:8080/');
    expect(publicVoteUrl({ host: '::1', port: 9000, interfaces })).toBe('http://[::1]:9000/');
  });

  it('prints the network URLs when listening on every interface, and how to do so when not', () => {
    const base = { port: 8080, resultPort: 8081, runtime: 'process', functions: ['vote'], interfaces };
    const everywhere = startBanner({ ...base, host: '0.0.0.0' });
    expect(everywhere).toContain('Vote:      http://localhost:8080/');
    expect(everywhere).toContain('Vote:      http://192.168.1.23:8080/     Result: http://192.168.1.23:8081/');
    expect(everywhere).toContain('http://[2001:db8::5]:8080/');
    expect(startBanner({ ...base, host: '0.0.0.0', publicUrl: 'http://192.168.1.23:8080/' })).toContain('QR code:   http://192.168.1.23:8080/');
    const local = startBanner({ ...base, host: '127.0.0.1' });
    expect(local).not.toContain('192.168.1.23');
    expect(local).toContain('HOST=0.0.0.0 npm start');
  });

  it('is what npm start prints with HOST=0.0.0.0: every address of this machine', async () => {
    const app = await appProcess({ env: { HOST: '0.0.0.0' } });
    try {
      await app.start();
      // Ready first, then the banner: wait for its last line rather than racing the pipe.
      await waitUntil(async () => app.output().includes('Press Ctrl-C to stop.'), { timeoutMs: 10_000, intervalMs: 50, what: 'the start banner' });
      const printed = app.output();
      const expected = networkAddresses(networkInterfaces());
      for (const address of expected) expect(printed).toContain(`http://${address}:${app.port}/`);
      // A machine with loopback only has no network URLs to show, and says none.
      expect(printed.includes('On the network')).toBe(expected.length > 0);
    } finally {
      await app.close();
    }
  });
});
