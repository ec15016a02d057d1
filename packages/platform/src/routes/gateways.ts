import { Router } from 'express';
import { requireReader, type AdminAuth } from '../auth.js';
import { InvocationError } from '../errors.js';
import { GATEWAYS_PATH, type GatewayMember } from '@platform/protocol';
import type { Member, MemberRegistry } from '../cluster/members.js';

/** What the route needs of a MemberRegistry. */
export type MemberList = Pick<MemberRegistry, 'list'>;

/** One member as GET /system/gateways shows it (the OpenAPI schema GatewayMember). */
export function memberView(member: Member): GatewayMember {
  return {
    id: member.id,
    role: member.role,
    host: member.host,
    pid: member.pid,
    leader: member.leader,
    startedAt: member.startedAt.toISOString(),
    lastSeenAt: member.lastSeenAt.toISOString(),
    inFlight: member.inFlight,
    cpu: Math.round(member.cpu * 100) / 100,
  };
}

export interface GatewaysRouteOptions {
  /** The tier's member list; without it the route answers 501 (a gateway alone, without a shared database). */
  members: MemberList | undefined;
  auth: AdminAuth;
}

/** GET /system/gateways: every live edge and controller of the tier, read like the other /system status. */
export function gatewaysRoutes({ members, auth }: GatewaysRouteOptions): Router {
  const router = Router();
  router.get(GATEWAYS_PATH, requireReader(auth), async (_req, res) => {
    if (!members) throw new InvocationError(501, "this gateway keeps no list of the tier's members");
    const list = await members.list().catch(() => {
      throw new InvocationError(503, "the tier's member list cannot be read now", { 'retry-after': '1' });
    });
    res.json(list.map(memberView));
  });
  return router;
}
