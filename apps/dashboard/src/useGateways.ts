import { useEffect, useState } from 'react';
import { GATEWAYS_PATH, type GatewayMember } from '@platform/protocol';

/**
 * The gateway tier's members, polled every `intervalMs` (the list is a database read, not a
 * push). `members` is null until the first answer, and stays null where the gateway keeps no
 * list (501: a gateway alone); after a failed poll the last list stays, with `problem` saying why.
 */
export function useGateways(token: string | null, intervalMs = 2_000): { members: GatewayMember[] | null; problem: string | null } {
  const [members, setMembers] = useState<GatewayMember[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const poll = async () => {
      try {
        const answer = await fetch(GATEWAYS_PATH, { headers: token ? { authorization: `Bearer ${token}` } : {} });
        if (answer.status === 501) return; // no tier to show, and none will appear: stop polling
        if (!answer.ok) throw new Error(((await answer.json().catch(() => null)) as { error?: string } | null)?.error ?? `status ${answer.status}`);
        if (stopped) return;
        setMembers((await answer.json()) as GatewayMember[]);
        setProblem(null);
      } catch (error) {
        if (!stopped) setProblem(error instanceof Error ? error.message : String(error));
      }
      if (!stopped) timer = setTimeout(() => void poll(), intervalMs);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [token, intervalMs]);

  return { members, problem };
}
