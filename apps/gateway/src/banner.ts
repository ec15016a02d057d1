import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

/**
 * The addresses other machines reach this one at, IPv4 first (what phones in a room type or
 * scan), as Vite shows them: nothing internal, nothing link-local.
 */
export function networkAddresses(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string[] {
  const all = Object.values(interfaces).flatMap((list) => list ?? []);
  const usable = all.filter((i) => !i.internal && !(i.family === 'IPv6' && /^fe80:/i.test(i.address)));
  const v4 = usable.filter((i) => i.family === 'IPv4').map((i) => i.address);
  const v6 = usable.filter((i) => i.family === 'IPv6').map((i) => `[${i.address}]`);
  return [...new Set([...v4, ...v6])];
}

export interface BannerOptions {
  host: string;
  port: number;
  resultPort: number;
  runtime: string;
  functions: string[];
  adminTokenFile?: string | undefined;
  /** Edge processes serving the ports (1: the whole gateway in one process). */
  edges?: number;
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/** What `npm start` prints once ready: where to vote, watch and manage, on every address it listens on. */
export function startBanner({ host, port, resultPort, runtime, functions, adminTokenFile, edges = 1, interfaces }: BannerOptions): string {
  const everywhere = host === '0.0.0.0' || host === '::';
  const shown = everywhere ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  const network = everywhere ? networkAddresses(interfaces) : [];
  const lines = [
    '',
    `  Vote:      http://${shown}:${port}/`,
    `  Result:    http://${shown}:${resultPort}/  (also http://${shown}:${port}/result/)`,
    `  Dashboard: http://${shown}:${port}/system/ui/`,
    `  Gateway:   http://${shown}:${port}/system/functions  (runtime: ${runtime}, functions: ${functions.join(', ')})`,
    `  Edges:     ${edges === 1 ? 'one process serves everything (GATEWAY_WORKERS=1; default: half the cores)' : `${edges} processes share the ports, one controller starts the instances`}`,
  ];
  if (network.length > 0) {
    lines.push('', '  On the network (phones in the room):');
    for (const address of network) lines.push(`  Vote:      http://${address}:${port}/     Result: http://${address}:${resultPort}/`);
  } else if (!everywhere && (host === '127.0.0.1' || host === 'localhost' || host === '::1')) {
    lines.push('', '  Only this machine can reach it: HOST=0.0.0.0 npm start listens on the network too.');
  }
  lines.push(
    '',
    adminTokenFile
      ? `  Admin token (scale, logs; fn reads it from here): ${adminTokenFile}`
      : '  Admin token: from the secret gateway-admin-token (SECRETS_DIR) or GATEWAY_ADMIN_TOKEN',
    '',
    '  Press Ctrl-C to stop.',
    '',
  );
  return `${lines.join('\n')}\n`;
}
