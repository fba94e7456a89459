// Integration tests start real processes and sockets; give them room on a 2-core box.
jest.setTimeout(60_000);
