import { watcher } from './index';

watcher.run();
