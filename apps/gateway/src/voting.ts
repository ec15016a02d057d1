// What makes the generic gateway the voting app's: which route stands for which function, which
// event feeds which socket.io channel, and the original result server's socket protocol. One
// definition for the app's entry point and for the tests that compose a gateway like it.
import type { GatewayOptions } from '@platform/core';

export const votingComposition = {
  channels: [{ event: 'scores', topic: 'votes', source: 'results' }],
  // The original's form post `POST /` with `vote=a` stands for the vote function.
  aliases: [{ method: 'post', path: '/', function: 'vote' }],
  // The original result page shows itself, and only then listens for `scores`, on `message`.
  socketProtocol: { greeting: { event: 'message', data: { text: 'Welcome!' } }, joinEvent: 'subscribe' },
} satisfies Pick<GatewayOptions, 'channels' | 'aliases' | 'socketProtocol'>;

/** The voter a `voter_id` cookie stands for: its value is `<id>.<count>.<mac>`, the count new at every vote. */
export const voterOfCookie = (value: string): string => value.split('.')[0]!;
