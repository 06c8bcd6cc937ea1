/** The `session` field of the provider routes: which persistent shell of the project a shell call runs on. */
import { sessionName } from '../schemas.js';

/** A session key, as the provider routes take it (default "default"): a session's name (lib/schemas.ts). */
export const sessionKey = sessionName.describe(
  'The persistent shell the call runs on (default "default"): calls with the same key share its working directory and environment.',
);
