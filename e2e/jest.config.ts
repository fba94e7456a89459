import type { Config } from 'jest';

import { packageJestConfig } from '../jest.preset';

// End-to-end tests of the whole system under the project's own PM2.
const config: Config = packageJestConfig(__dirname);
export default config;
