import Docker from 'dockerode';
import type { ScalableService } from '../../controller/edge-scaler.js';
import { Replicas } from './replicas.js';

interface ServiceInfo {
  Spec: { Mode: { Replicated?: { Replicas: number } }; TaskTemplate?: { Placement?: { MaxReplicas?: number } } };
}

/**
 * A replicated Swarm service the controller scales (the edges'). Its limit is what Swarm can place:
 * with `max_replicas_per_node` set (edges publish host-mode ports, one per node), that many per
 * ready, active node.
 */
export function swarmService(name: string, { docker = new Docker(), log }: { docker?: Docker; log?: (message: string) => void } = {}): ScalableService {
  const replicas = new Replicas(docker, name, () => false, log);
  const current = async () => ((await docker.getService(name).inspect()) as ServiceInfo).Spec.Mode.Replicated?.Replicas;
  return {
    name,
    async read() {
      const info = (await docker.getService(name).inspect()) as ServiceInfo;
      const set = info.Spec.Mode.Replicated?.Replicas;
      if (set === undefined) throw new Error(`service ${name} is not a replicated service`);
      const perNode = info.Spec.TaskTemplate?.Placement?.MaxReplicas ?? 0;
      if (!perNode) return { replicas: set, limit: Number.POSITIVE_INFINITY };
      const nodes = (await docker.listNodes()) as Array<{ Spec?: { Availability?: string }; Status?: { State?: string } }>;
      const usable = nodes.filter((n) => n.Status?.State === 'ready' && n.Spec?.Availability === 'active').length;
      return { replicas: set, limit: perNode * usable };
    },
    async scale(to: number) {
      replicas.desired = to;
      await replicas.write(); // logs, never throws: whether it was written is read back
      const now = await current();
      if (now !== to) throw new Error(`service ${name} is still at ${now} replicas, not ${to}`);
    },
  };
}
