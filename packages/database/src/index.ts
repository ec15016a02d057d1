export { migrate, migrationsDir } from './migrate.js';
export { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded.js';
export { redact, waitForPostgres } from './wait.js';
