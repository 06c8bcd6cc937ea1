/**
 * How toolhost starts Azurite, everywhere it does (the tests, the bench, `npm run start:azurite`): every service on
 * a free port of 127.0.0.1 (the table service cannot be left out of the all-in-one emulator, so it gets one too,
 * never colliding on its default 10002), everything in memory, no telemetry, no API version pinning.
 */
export const AZURITE_ARGS: readonly string[] = [
  '--skipApiVersionCheck',
  '--inMemoryPersistence',
  '--disableTelemetry',
  '--silent',
  ...['--blobHost', '127.0.0.1', '--queueHost', '127.0.0.1', '--tableHost', '127.0.0.1'],
  ...['--blobPort', '0', '--queuePort', '0', '--tablePort', '0'],
];
