/** Every scenario, in the order the issue lists them and the table shows them. */
import type { Scenario } from '../lib/types.js';
import { agents } from './agents.js';
import { azureRoundtrip } from './azure-roundtrip.js';
import { budgets } from './budgets.js';
import { checkpoints } from './checkpoints.js';
import { coldStart } from './cold-start.js';
import { execOverhead } from './exec-overhead.js';
import { isolation } from './isolation.js';
import { outputFlood } from './output-flood.js';
import { patch } from './patch.js';
import { peers } from './peers.js';
import { readOverhead } from './read-overhead.js';
import { save } from './save.js';
import { search } from './search.js';
import { sessions } from './sessions.js';
import { start } from './start.js';
import { throughput } from './throughput.js';
import { waiters } from './waiters.js';

export const SCENARIOS: readonly Scenario[] = [
  execOverhead,
  readOverhead,
  peers,
  isolation,
  throughput,
  waiters,
  coldStart,
  save,
  search,
  azureRoundtrip,
  outputFlood,
  budgets,
  patch,
  sessions,
  checkpoints,
  start,
  agents,
];
