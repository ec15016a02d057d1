// The dashboard's timeline: what the controller announced, in words, newest first.
import type { TimelineEvent } from '@platform/protocol';
import type { Announcement } from './capacity.js';

/** Events a timeline keeps (the newest). */
export const TIMELINE_LENGTH = 40;

export function timelineEvent(announced: Announcement): TimelineEvent {
  const { at } = announced;
  switch (announced.kind) {
    case 'instanceStarted': {
      const { function: fn, instance, reason, coldStartMs } = announced.data;
      const detail = reason === 'adopted' ? 'taken over by a new controller' : `${reason === 'scaled' ? 'scaled up' : 'cold start'} in ${coldStartMs} ms`;
      return { at, function: fn, kind: 'started', instance, detail };
    }
    case 'instanceStopped':
      return { at, function: announced.data.function, kind: 'stopped', instance: announced.data.instance, detail: announced.data.reason };
    case 'scaled':
      return { at, function: announced.data.function, kind: 'scaled', detail: `${announced.data.from} → ${announced.data.to} instances` };
    case 'deployed': {
      const { function: fn, action, image } = announced.data;
      return { at, function: fn, kind: action, detail: `${action}${image ? ` (${image})` : ''}` };
    }
    case 'removed':
      return { at, function: announced.data.function, kind: 'removed', detail: 'removed: its instances drain and stop' };
    case 'edgesScaled': {
      const { service, from, to, reason } = announced.data;
      return { at, function: service, kind: 'edges', detail: `${from} → ${to} edges: ${reason}` };
    }
  }
}

const key = (e: TimelineEvent) => `${e.at}\u0000${e.kind}\u0000${e.function}\u0000${e.instance ?? ''}\u0000${e.detail}`;

/**
 * The timeline with `events` added: newest first, at most TIMELINE_LENGTH, each event once however
 * often it is told (an edge that follows a controller again is told its history again).
 */
export function addToTimeline(timeline: readonly TimelineEvent[], events: readonly TimelineEvent[]): TimelineEvent[] {
  const seen = new Set(timeline.map(key));
  const added = events.filter((e) => !seen.has(key(e)) && seen.add(key(e)));
  return [...added, ...timeline].sort((a, b) => b.at - a.at).slice(0, TIMELINE_LENGTH);
}
