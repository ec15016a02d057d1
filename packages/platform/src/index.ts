// The platform's public face: a gateway (routes, invocation, fan-out), its function pools, and the
// runtimes that start function instances. It knows functions, queues and channels, never an app.
export { createGateway, queueConsumer, type Gateway, type GatewayOptions } from './gateway.js';
export { FunctionPool } from './pool.js';
export { InvocationError } from './errors.js';
export { createRuntime, type RuntimeKind } from './runtimes/index.js';
export type { Instance, Runtime, RuntimeOptions } from './runtimes/runtime.js';
export type { Channel } from './fanout.js';
export type { RateLimit } from './rate-limit.js';
export type { AdminAuth } from './auth.js';
export { localSecret, secretResolver } from './secrets.js';
export { site } from './pages.js';
export { applyServerTimeouts } from './timeouts.js';
export { parseHostPattern } from './callback-url.js';
export { migratePlatform } from './store/migrate.js';
export { Leadership, lockKey, LEASE_MARGIN_MS, SERVER_DROPS_SILENT_CLIENT_MS, type LeadershipOptions } from './cluster/leadership.js';
export { Controller, type ControllerOptions } from './controller/controller.js';
export { functionStore, type FunctionStore } from './store/functions.js';
export { imageAllowed, parseDeployRequest } from './deploy-request.js';
export { controllerApi, serveControllerApi, type ControllerState } from './controller/api.js';
export { serveControllerProcess } from './controller/server.js';
export { RemoteCapacity } from './edge/remote-capacity.js';
export type { Capacity, InstanceInfo } from './capacity.js';
export { EdgeScaler, edgesWanted, type EdgeScaledEvent, type EdgeScaling, type ScalableService } from './controller/edge-scaler.js';
export { watchGoneMembers, type GoneMembersOptions } from './cluster/gone-members.js';
export { cpuMeter, MemberRegistry, type JoinOptions, type Member, type MemberRegistryOptions, type MemberRole, type Membership } from './cluster/members.js';
export { gatewaysRoutes, memberView, type MemberList } from './routes/gateways.js';
