/**
 * The swarm runtime: functions as Swarm services. runtime.ts ties the parts together: spec.ts
 * (a service from a manifest and the lockdown), secrets.ts, deploy.ts (create or update in
 * place), warm.ts (a warm service's tasks and instances) with replicas.ts (replica writes),
 * tasks.ts, jobs.ts and job-desk.ts (one-shot calls), leftovers.ts (cleanup and teardown).
 */
export { SwarmRuntime, type SwarmRuntimeOptions } from './runtime.js';
export { SWARM_FUNCTION_LABEL, SWARM_OWNER_LABEL } from './spec.js';
export { ownAddress } from './job-desk.js';
export { swarmService } from './edge-service.js';
