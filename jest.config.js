/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  moduleNameMapper: {
    '^@kv/client$': '<rootDir>/clients/typescript/src/index.ts',
    '^@kv/client/wire$': '<rootDir>/clients/typescript/src/wire/index.ts',
  },
  testTimeout: 60000,
  // A build of the sources as they are (the tests run dist/), and the run's temporary files in one directory, removed at its end.
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/tmp-teardown.js',
  // Suites start real servers and child processes; two workers match the two cores.
  maxWorkers: 2,
};
