export { migrate, migrationsDir } from './migrate.js';
export { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded.js';
export { asRole, functionDatabaseSecrets, functionRoles, type RoleLogin } from './roles.js';
export { redact, waitForPostgres } from './wait.js';
