// The floor of the viewers scenario: a bare socket.io server that does nothing but broadcast a
// `scores` message when told to (`{a: n, b: 0}`, so a viewer's total is the broadcast's number).
// Prints its port on stdout; answers each IPC `{ emit: n }` with the time it began the broadcast.
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { clock } from './viewer-thread.js';

const http = createServer();
const io = new Server(http, { serveClient: false });
let current = JSON.stringify({ a: 0, b: 0 });
io.on('connection', (socket) => socket.emit('scores', current));
process.on('message', (message: { emit: number }) => {
  current = JSON.stringify({ a: message.emit, b: 0 });
  const at = clock();
  io.emit('scores', current);
  process.send?.({ emit: message.emit, at });
});
http.listen(0, '127.0.0.1', () => {
  const address = http.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('disconnect', () => process.exit(0));
