import { basename, join } from 'node:path';

import type { Config } from 'jest';

// node-ipc 14 and its dependencies, and @noble/secp256k1 3, ship ES modules only.
// Node runs them through require(esm), but jest's module loader does not, so jest
// compiles them to CommonJS with babel; production code loads them untouched.
const ESM_ONLY = ['node-ipc', 'event-pubsub', 'strong-type', 'js-message', 'js-queue', 'easy-stack', '@noble/secp256k1'];

/** The jest settings every package shares; each package's jest.config.ts calls this. */
export function packageJestConfig(dir: string): Config {
  return {
    displayName: basename(dir),
    rootDir: dir,
    testEnvironment: 'node',
    testMatch: ['<rootDir>/test/**/*.test.ts'],
    transform: {
      '^.+\\.ts$': ['ts-jest', { tsconfig: join(__dirname, 'tsconfig.test.json') }],
      [`/node_modules/(${ESM_ONLY.join('|')})/.+\\.js$`]: [
        'babel-jest',
        {
          babelrc: false,
          configFile: false,
          plugins: [require.resolve('./scripts/jest/import-meta-url.cjs'), '@babel/plugin-transform-modules-commonjs'],
        },
      ],
    },
    transformIgnorePatterns: [`/node_modules/(?!(${ESM_ONLY.join('|')})/)`],
    setupFilesAfterEnv: [join(__dirname, 'scripts', 'jest', 'setup.ts')],
  };
}
