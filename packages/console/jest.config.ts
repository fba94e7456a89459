import type { Config } from 'jest';

import { packageJestConfig } from '../../jest.preset';

const config: Config = packageJestConfig(__dirname);
export default config;
