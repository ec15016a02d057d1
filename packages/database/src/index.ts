export { migrate, migrationsDir } from './migrate.js';
export { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded.js';
export { waitForPostgres } from './wait.js';
