'use strict';
// A discarding SMTP server in its own process, counting messages (and the X-Steem-Bot-Message ids).
const { SMTPServer } = require('smtp-server');

let count = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, _session, callback) {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      count++;
      callback();
    });
  },
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.server.address().port }));
process.on('message', (m) => m === 'count' && process.send({ count }));
