import { describe, expect, it } from 'vitest';
import type { Member } from '../src/cluster/members.js';
import { watchGoneMembers } from '../src/cluster/gone-members.js';

const member = (id: string, role: 'edge' | 'controller' = 'edge'): Member => ({
  id,
  role,
  host: `host-${id}`,
  pid: 7,
  url: null,
  leader: false,
  startedAt: new Date(),
  lastSeenAt: new Date(),
  inFlight: 0,
  cpu: 0,
  details: {},
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('watchGoneMembers', () => {
  // Break it catches: a member counted gone after one listing without it (a database back from a
  // restart lists every member stale once), a failed listing counted as an empty tier, or a
  // member reported gone twice.
  it('reports each member of the role once, after two listings in a row without it; an unreadable list changes nothing', async () => {
    const listings: Array<Member[] | 'fail'> = [
      [member('a'), member('b'), member('c', 'controller')],
      'fail',
      [member('a')], // b missing once
      [member('a'), member('b')], // b back: not gone
      [member('a')], // b missing once more
      [], // b missing twice: gone; a missing once
      [], // a missing twice: gone
      [],
      [],
    ];
    let i = 0;
    const gone: string[] = [];
    const watcher = watchGoneMembers({
      list: async () => {
        const next = listings[Math.min(i++, listings.length - 1)]!;
        if (next === 'fail') throw new Error('database down');
        return next;
      },
      role: 'edge',
      onGone: (m) => {
        gone.push(`${m.id}@${i - 1}`);
      },
      intervalMs: 5,
    });
    while (i < listings.length + 2) await sleep(5);
    await watcher.stop();
    expect(gone).toEqual(['b@5', 'a@6']);
  });
});
