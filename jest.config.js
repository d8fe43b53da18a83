/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  // Tests are compiled a file at a time, without a type-check (npm run typecheck checks them, and CI runs it first):
  // a type-checking ts-jest spent some 100 s of CPU a run. The two suites whose check is the type-checker itself
  // (calls that must compile, and @ts-expect-error ones that must not) are still compiled with it.
  transform: {
    '/(json-typings|watch-options-typing)\\.test\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }],
  },
  moduleNameMapper: {
    '^@kv/client$': '<rootDir>/clients/typescript/src/index.ts',
    '^@kv/client/wire$': '<rootDir>/clients/typescript/src/wire/index.ts',
  },
  testTimeout: 60000,
  // A build of the sources as they are (the tests run dist/), and the run's temporary files in one directory, removed at its end.
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/tmp-teardown.js',
  // Suites start real servers and child processes, and much of their time is spent waiting on them (fsync, timers,
  // restarts): two workers kept the two cores busy some 65% of the run; three finished a whole run in 13.4 min, not 15.4.
  maxWorkers: 3,
};
