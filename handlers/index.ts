/** The job tools, by the job type each runs: the only list of them (the supervisor adds its own tools to it). */
import type { JobTool } from '../lib/tool.js';
import { CHECKPOINT_TOOLS } from './checkpoint-tools.js';
import { executeTool } from './execute.js';
import { fileEditTool } from './file-edit.js';
import { fileGlobTool } from './file-glob.js';
import { fileInsertTool } from './file-insert.js';
import { fileListTool } from './file-list.js';
import { filePatchTool } from './file-patch.js';
import { fileReadTool } from './file-read.js';
import { fileWriteTool } from './file-write.js';
import { searchTool } from './search.js';
import { SESSION_TOOLS } from './session-tools.js';

/** Every job tool, in the order models see them. */
export const JOB_TOOLS: readonly JobTool[] = [
  executeTool,
  fileReadTool,
  fileWriteTool,
  fileEditTool,
  fileInsertTool,
  filePatchTool,
  fileListTool,
  fileGlobTool,
  searchTool,
  ...SESSION_TOOLS,
  ...CHECKPOINT_TOOLS,
];

const BY_TYPE = new Map(JOB_TOOLS.map((t) => [t.job.type, t]));

/** The tool that runs jobs of `type` (a queue may carry a type this version does not know). */
export function jobToolOf(type: string): JobTool | undefined {
  return BY_TYPE.get(type);
}
