/** The `session` field of the provider routes: which persistent shell of the project a shell call runs on. */
import { z } from 'zod';

/** A session key, as the provider routes take it (default "default"); the same rule as a session's name. */
export const sessionKey = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1-128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit')
  .describe('The persistent shell the call runs on (default "default"): calls with the same key share its working directory and environment.');
