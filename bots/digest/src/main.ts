import { digest } from './index';

digest.run();
