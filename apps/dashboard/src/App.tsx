import { useEffect, useState, type FormEvent } from 'react';
import type { GatewayMember, LiveFunction, LiveInstance, TimelineEvent } from '@platform/protocol';
import { storeToken, storedToken, usePlatform } from './usePlatform';
import { useGateways } from './useGateways';
import { RoomInvite } from '@voting/room-invite';

const time = (at: number) => new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function useNow(intervalMs = 1_000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

function Instance({ instance, now }: { instance: LiveInstance; now: number }) {
  const age = Math.max(0, Math.round((now - instance.startedAt) / 1_000));
  const kind = instance.reason === 'scaled' ? 'pre-warmed' : instance.reason === 'adopted' ? 'taken over' : 'cold start';
  return (
    <li className={`instance ${instance.reason}`} data-testid="instance" data-instance={instance.id}>
      <span className="instance-id">{instance.id}</span>
      <span className="instance-meta">
        {instance.pid ? `pid ${instance.pid} · ` : ''}
        {kind}
        {instance.reason === 'adopted' ? '' : ` ${instance.coldStartMs} ms`} · up {age} s
      </span>
    </li>
  );
}

function Stat({ label, value, testId }: { label: string; value: string; testId?: string }) {
  return (
    <div className="stat">
      <span className="stat-value" data-testid={testId}>
        {value}
      </span>
      <span className="stat-label">{label}</span>
    </div>
  );
}

function FunctionCard({ fn, now }: { fn: LiveFunction; now: number }) {
  const state = fn.instances.length === 0 ? (fn.replicas > 0 ? 'starting' : 'cold') : fn.inFlight > 0 ? 'busy' : 'warm';
  return (
    <section className={`card ${state}`} data-testid={`function-${fn.name}`} aria-label={`function ${fn.name}`}>
      <header className="card-head">
        <h2>{fn.name}</h2>
        <span className={`badge ${state}`} data-testid="state">
          {state === 'cold' ? 'scaled to zero' : state}
        </span>
      </header>
      <p className="limits">
        {fn.mode} · up to {fn.maxInstances} instance{fn.maxInstances === 1 ? '' : 's'} · idle stop {fn.idleSeconds} s · timeout {fn.timeoutSeconds} s
      </p>
      <div className="stats">
        <Stat label="calls/s" value={fn.callsPerSecond.toFixed(1)} testId="calls-per-second" />
        <Stat label="p50 ms" value={fn.latencyMs ? String(Math.round(fn.latencyMs.p50)) : '–'} />
        <Stat label="p95 ms" value={fn.latencyMs ? String(Math.round(fn.latencyMs.p95)) : '–'} />
        <Stat label="p99 ms" value={fn.latencyMs ? String(Math.round(fn.latencyMs.p99)) : '–'} />
        <Stat label="in flight" value={String(fn.inFlight)} />
        <Stat label="calls" value={String(fn.invocationCount)} testId="invocations" />
        <Stat label="cold starts" value={String(fn.coldStarts)} />
      </div>
      <h3>
        Instances <span data-testid="instance-count">{fn.instances.length}</span>
      </h3>
      <ul className="instances">
        {fn.instances.length === 0 ? <li className="none">none: the next call starts one</li> : null}
        {fn.instances.map((instance) => (
          <Instance key={instance.id} instance={instance} now={now} />
        ))}
      </ul>
      {fn.lastErrors.length > 0 ? (
        <ul className="errors" aria-label="last errors">
          {fn.lastErrors.map((e) => (
            <li key={`${e.at}-${e.status}-${e.message ?? ''}`}>
              {time(e.at)} {e.status} {e.message ?? ''}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}

/** One mark per kind of event, readable from the back of a room. */
const MARKS: Record<TimelineEvent['kind'], string> = { started: '▲', stopped: '▼', scaled: '⇅', edges: '⇆', deployed: '✚', updated: '↻', removed: '✖' };

function Timeline({ events }: { events: TimelineEvent[] }) {
  return (
    <section className="timeline" aria-label="scale and deploy events">
      <h2>Scale and deploy events</h2>
      <ol data-testid="timeline">
        {events.length === 0 ? <li className="none">nothing yet</li> : null}
        {events.map((e) => (
          <li key={`${e.at}-${e.function}-${e.kind}-${e.instance ?? ''}`} className={e.kind}>
            <time>{time(e.at)}</time> <strong>{e.function}</strong> {MARKS[e.kind]} {e.instance ?? ''} <span className="detail">{e.detail}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

const ago = (now: number, iso: string) => `${Math.max(0, Math.round((now - Date.parse(iso)) / 1_000))} s`;

/** The gateway tier: its controllers (the leader marked), then its edges. */
function Tier({ members, problem, now }: { members: GatewayMember[]; problem: string | null; now: number }) {
  return (
    <section className="tier" aria-label="gateway tier">
      <h2>
        Gateways <span data-testid="gateway-count">{members.length}</span>
        {problem ? <span className="tier-problem"> · {problem}</span> : null}
      </h2>
      <table data-testid="gateways">
        <thead>
          <tr>
            <th>role</th>
            <th>id</th>
            <th>pid</th>
            <th>in flight</th>
            <th>CPU</th>
            <th>up</th>
            <th>seen</th>
          </tr>
        </thead>
        <tbody>
          {members.map((m) => (
            <tr key={m.id} className={m.leader ? 'leader' : m.role}>
              <td>{m.role === 'controller' ? (m.leader ? 'controller ★ leader' : 'controller (standby)') : 'edge'}</td>
              <td className="tier-id">{m.id}</td>
              <td>{m.pid}</td>
              <td>{m.inFlight}</td>
              <td>{Math.round(m.cpu * 100)} %</td>
              <td>{ago(now, m.startedAt)}</td>
              <td>{ago(now, m.lastSeenAt)} ago</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function TokenForm() {
  const [value, setValue] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    storeToken(value);
    location.reload();
  };
  return (
    <form className="token" onSubmit={submit}>
      <label>
        Status is private on this gateway: admin token <input type="password" value={value} onChange={(e) => setValue(e.target.value)} autoComplete="off" />
      </label>
      <button type="submit">Connect</button>
    </form>
  );
}

export function App() {
  const [token] = useState(storedToken);
  const { snapshot, connection } = usePlatform(token);
  const tier = useGateways(token);
  const now = useNow();
  return (
    <main>
      <header className="top">
        <h1>Functions, live</h1>
        <div className="top-stats">
          <span>
            queue depth <strong data-testid="queue-depth">{snapshot?.queueDepth ?? '–'}</strong>
          </span>
          <span className={`connection ${connection}`} data-testid="connection" role="status">
            {connection === 'live' ? '● Live' : connection === 'unauthorized' ? 'Token needed' : connection === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
          </span>
          <RoomInvite />
        </div>
      </header>
      {connection === 'unauthorized' ? <TokenForm /> : null}
      {tier.members ? <Tier members={tier.members} problem={tier.problem} now={now} /> : null}
      <div className="layout">
        <div className="cards">
          {(snapshot?.functions ?? []).map((fn) => (
            <FunctionCard key={fn.name} fn={fn} now={now} />
          ))}
        </div>
        <Timeline events={snapshot?.timeline ?? []} />
      </div>
    </main>
  );
}
