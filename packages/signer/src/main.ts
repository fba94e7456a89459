import { runApp } from '@steem-bot/bus';

import { startSigner } from './app';

// Below PM2's kill_timeout: a pass in flight (a broadcast, a lookup) finishes; all state is on disk.
runApp({ app: 'signer', sections: ['chain', 'signer'], drainMs: 8_000, start: (ctx) => startSigner(ctx) });
