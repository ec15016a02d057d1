import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * Whether the controller with this id still runs. Leftover cleanup removes another owner's
 * containers or job services only when this says it is gone.
 */
export type OwnerAlive = (owner: string) => Promise<boolean>;

/** Knowing nothing of other owners, every one of them may still be running: nothing of theirs is removed. */
export const assumeAlive: OwnerAlive = async () => true;

/**
 * What this host itself can tell: an owner on this host whose process is gone (or whose pid is
 * this very process's, so an earlier run in the same container) is gone; any other is alive.
 * So a restarted controller removes what its crashed predecessor left, and no one else's.
 */
export const sameHostLiveness: OwnerAlive = async (owner) => {
  const parsed = /^(.*)-(\d+)-[0-9a-f]{8}$/.exec(owner);
  if (!parsed || parsed[1] !== hostname()) return true;
  const pid = Number(parsed[2]);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
};

/**
 * A new id for a controller process, `<host>-<pid>-<random>`: one per start, so two controllers on
 * one engine (or one host name) never take each other's containers for their own.
 */
export function newControllerId(host = hostname()): string {
  return `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Which owners' leftovers may be removed, asking `isAlive` once per owner: this controller's own
 * id (the caller leaves out what it still uses), and owners `isAlive` says are gone. No owner, or
 * an owner `isAlive` fails to answer for, never.
 */
export function goneOwners(me: string, isAlive: OwnerAlive = assumeAlive): (owner: string | undefined) => Promise<boolean> {
  const verdicts = new Map<string, Promise<boolean>>();
  return (owner) => {
    if (!owner) return Promise.resolve(false);
    if (owner === me) return Promise.resolve(true);
    let verdict = verdicts.get(owner);
    if (!verdict) {
      verdict = isAlive(owner).then(
        (alive) => !alive,
        () => false,
      );
      verdicts.set(owner, verdict);
    }
    return verdict;
  };
}
