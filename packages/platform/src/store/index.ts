// The shared state's adapters, picked by the URL's scheme: none, this process's memory; postgres://
// or postgresql://, the platform's tables in that database (migratePlatform makes them).
import { memoryState } from './memory.js';
import { PostgresState } from './postgres.js';
import type { SharedState, SharedStateOptions } from './state.js';

export type { CallRecords, CallWrite, SharedState, SharedStateOptions } from './state.js';

/** Only the scheme is ever put in an error: the rest of the URL may hold a password. */
export function sharedState(url: string | undefined, options: SharedStateOptions): SharedState {
  if (url === undefined) return memoryState(options);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return new PostgresState(url, options);
  const found = scheme === undefined ? 'a URL without a scheme' : `URL scheme "${scheme}:"`;
  throw new Error(`shared state: unsupported ${found}; use postgres:// or postgresql://, or none for this process's memory`);
}
