// Members that were listed and no longer are: an edge that died (its heartbeats stopped) or left.
// The leading controller releases what a gone edge held of the queue, so that another edge takes
// those calls at once rather than after the queue's visibility timeout.
import type { Member, MemberRole } from './members.js';

export interface GoneMembersOptions {
  /** The tier's live members (MemberRegistry.list). */
  list: () => Promise<Member[]>;
  role: MemberRole;
  /** Called once per member gone; a rejection is logged. */
  onGone: (member: Member) => Promise<void> | void;
  intervalMs?: number;
  log?: (message: string) => void;
}

/**
 * Watches the member list until stopped. A member is gone once two listings in a row lack it (a
 * database that was down for a moment leaves every row stale until the next heartbeats); a list
 * that cannot be read counts no one as gone.
 */
export function watchGoneMembers({ list, role, onGone, intervalMs = 2_000, log }: GoneMembersOptions): { stop(): Promise<void> } {
  let known: Map<string, Member> | undefined;
  /** Members missing from the last listing, not yet counted gone. */
  const missing = new Set<string>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    let now: Map<string, Member>;
    try {
      now = new Map((await list()).filter((m) => m.role === role).map((m) => [m.id, m]));
    } catch {
      return;
    }
    for (const [id, member] of known ?? []) {
      if (now.has(id)) {
        missing.delete(id);
        continue;
      }
      if (!missing.has(id)) {
        missing.add(id);
        now.set(id, member); // still known until missing twice
        continue;
      }
      missing.delete(id);
      try {
        await onGone(member);
      } catch (error) {
        log?.(`member ${id} gone, but handling it failed: ${(error as Error).message}`);
      }
    }
    known = now;
  };
  const next = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().then(next);
    }, intervalMs);
    timer.unref();
  };
  running = tick().then(next);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
