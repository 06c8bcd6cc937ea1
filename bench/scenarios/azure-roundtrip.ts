/** azure-roundtrip: a job through the Azure queue backend. Not built: the only queue backend is "memory". */
import { configSchema } from '../../config/schema.js';
import { NotBuilt, type Scenario } from '../lib/types.js';

export const azureRoundtrip: Scenario = {
  name: 'azure-roundtrip',
  description: 'Round trip of a job through the Azure queue backend (against Azurite).',
  async run() {
    const backends: readonly string[] = configSchema.shape.queue.shape.backend.options;
    if (!backends.includes('azure')) {
      throw new NotBuilt(`the Azure queue backend is not built (queue.backend accepts: ${backends.join(', ')})`);
    }
    throw new NotBuilt('queue.backend accepts "azure" now, but this scenario has not been written yet (bench/scenarios/azure-roundtrip.ts)');
  },
};
