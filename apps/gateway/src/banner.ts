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

/**
 * The vote page's URL for people in the room (the pages show it as text and a QR code): PUBLIC_URL
 * when set, the first network address when listening on every interface, else the listening host.
 */
export function publicVoteUrl({
  publicUrl,
  host,
  port,
  interfaces,
}: {
  publicUrl?: string | undefined;
  host: string;
  port: number;
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
}): string {
  if (publicUrl) return publicUrl;
  const everywhere = host === '0.0.0.0' || host === '::';
  const shown = everywhere ? (networkAddresses(interfaces)[0] ?? 'localhost') : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${port}/`;
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
  /** The vote URL the pages show the room as a QR code (publicVoteUrl). */
  publicUrl?: string | undefined;
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/** What `npm start` prints once ready: where to vote, watch and manage, on every address it listens on. */
export function startBanner({ host, port, resultPort, runtime, functions, adminTokenFile, edges = 1, interfaces, publicUrl }: BannerOptions): string {
  const everywhere = host === '0.0.0.0' || host === '::';
  const shown = everywhere ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  const network = everywhere ? networkAddresses(interfaces) : [];
  const lines = [
    '',
    `  Vote:      http://${shown}:${port}/`,
    `  Result:    http://${shown}:${resultPort}/  (also http://${shown}:${port}/result/)`,
    `  Dashboard: http://${shown}:${port}/system/ui/`,
    ...(publicUrl ? [`  QR code:   ${publicUrl} ("Scan to vote" on the result page and the dashboard, or open them with ?join)`] : []),
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
