/**
 * Checkpoints and fork, for agents and over HTTP: take a checkpoint of a project, list them, restore one (the
 * state before the restore is checkpointed first, so a restore can be undone), fork a project into a new one.
 * They are project-op tools (lib/tool.ts): queued like any job, so with the Azure roles they reach the worker that
 * holds the project, and done there by its project cache (supervisor/project-ops.ts). A checkpoint captures the
 * whole working copy, what shell commands did included.
 */
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { projectId } from '../lib/schemas.js';
import { projectOpTool } from '../lib/tool.js';

/** `cp_` and up to 40 lowercase letters or digits. */
export const CHECKPOINT_ID_PATTERN = /^cp_[a-z0-9]{1,40}$/;

const checkpointId = z
  .string()
  .regex(CHECKPOINT_ID_PATTERN, 'must be a checkpoint_id that checkpoint_create or checkpoint_list returned ("cp_" then letters and digits)')
  .describe('The checkpoint, as checkpoint_create or checkpoint_list returned it.');

const theProject = projectId.describe('The project.');

/** A checkpoint, as the checkpoint tools show it. */
export const checkpointInfo = z.strictObject({
  checkpoint_id: z.string(),
  created_at: z.string(),
  label: z.string().nullable(),
  kind: z.string().describe('What took it: manual (checkpoint_create), auto (after a command), save, autosave, before-restore, upload, fork or create.'),
  bytes_uploaded: z.number().int().describe('Bytes written to the store for it: only what changed since the checkpoint before.'),
  files: z.number().int().optional().describe('Files in the project at that checkpoint.'),
});
export type CheckpointView = z.infer<typeof checkpointInfo>;

const restoreOutcome = z.strictObject({
  project_id: z.string(),
  checkpoint_id: z.string().describe('The checkpoint the project now equals.'),
  undo_checkpoint_id: z.string().describe('The checkpoint of the state before the restore: restore it to undo this one.'),
  files_written: z.number().int(),
  files_deleted: z.number().int(),
});

const forkOutcome = z.strictObject({
  project_id: z.string().describe('The new project.'),
  source_project_id: z.string(),
  checkpoint_id: z.string().nullable().describe('The checkpoint it was made from; null: from the current state.'),
  created_at: z.string(),
});

/** How long checkpoints are kept, for the descriptions. */
function keptText({ checkpoints: { keep } }: Config): string {
  return `The newest ${keep.count} checkpoints of a project are kept, none older than ${keep.maxAgeHours} hours (the newest always stays).`;
}

const labelText = (label: string | null): string => (label === null ? '' : ` "${label}"`);

export const checkpointCreateTool = projectOpTool({
  name: 'checkpoint_create',
  title: 'Checkpoint a project',
  route: { method: 'POST', path: '/projects/{project_id}/checkpoints', notFound: 'invalid_project_id' },
  input: z.strictObject({
    project_id: theProject,
    label: z
      .string()
      .min(1)
      .max(200)
      .refine((v) => !/\p{Cc}/u.test(v), 'must be one line without control characters')
      .optional()
      .describe('A short note of what the checkpoint is before (at most 200 characters).'),
  }),
  output: checkpointInfo,
  readOnly: false,
  errors: ['invalid_project_id', 'project_not_found', 'save_conflict', 'store_unavailable', 'no_space'],
  describe: (config) =>
    'Take a checkpoint of the whole project now: every file, including what shell commands did (installs, generated files, ' +
    'deletions, git state), so checkpoint_restore can bring this exact state back. Take one before a risky change: a refactor ' +
    'across files, a dependency upgrade, deleting or moving files, a migration. It costs only what changed since the last ' +
    `checkpoint. Answers the checkpoint_id; keep it. ${keptText(config)}`,
  examples: [{ project_id: 'demo', label: 'before the http refactor' }],
  job: { type: 'checkpoint_create', lane: 'files', mutates: true, projectOp: 'checkpoint_create' },
  toModel: (c, q) => [
    {
      type: 'text',
      text:
        `Checkpoint ${c.checkpoint_id}${labelText(c.label)} of ${q.project_id} taken at ${c.created_at} (${c.bytes_uploaded} bytes stored). ` +
        `To go back to it: checkpoint_restore with checkpoint_id "${c.checkpoint_id}".`,
    },
  ],
});

export const checkpointListTool = projectOpTool({
  name: 'checkpoint_list',
  title: "List a project's checkpoints",
  route: { method: 'GET', path: '/projects/{project_id}/checkpoints', notFound: 'invalid_project_id' },
  input: z.strictObject({ project_id: theProject }),
  output: z.strictObject({ project_id: z.string(), checkpoints: z.array(checkpointInfo).describe('Newest first.') }),
  readOnly: true,
  errors: ['invalid_project_id', 'project_not_found', 'store_unavailable'],
  describe: (config) =>
    "List the project's checkpoints, newest first: id, time, label and kind (manual ones from checkpoint_create; saves, " +
    `autosaves${config.checkpoints.auto ? ', one after every command and change' : ''} and the automatic one before each restore too). ` +
    `Use it to find the checkpoint_id to restore or fork from. ${keptText(config)}`,
  examples: [{ project_id: 'demo' }],
  job: { type: 'checkpoint_list', lane: 'files', mutates: false, projectOp: 'checkpoint_list' },
  toModel: (out, _q, config) => [{ type: 'text', text: listText(out.project_id, out.checkpoints, config.budgets.listChars) }],
});

/** The checkpoints as lines, newest first, within `budget` characters. */
function listText(project: string, checkpoints: readonly CheckpointView[], budget: number): string {
  if (checkpoints.length === 0) return `${project} has no checkpoints yet; take one with checkpoint_create.`;
  let text = `${checkpoints.length} checkpoints of ${project}, newest first:\n`;
  let shown = 0;
  for (const c of checkpoints) {
    const line = `${c.checkpoint_id} ${c.created_at} ${c.kind}${labelText(c.label)}\n`;
    if (text.length + line.length > budget) break;
    text += line;
    shown++;
  }
  if (shown < checkpoints.length) text += `[${checkpoints.length - shown} older not shown; GET /projects/${project}/checkpoints lists all]\n`;
  return text.trimEnd();
}

export const checkpointRestoreTool = projectOpTool({
  name: 'checkpoint_restore',
  title: 'Restore a project to a checkpoint',
  route: {
    method: 'POST',
    path: '/projects/{project_id}/checkpoints/{checkpoint_id}/restore',
    notFound: { project_id: 'invalid_project_id', checkpoint_id: 'checkpoint_not_found' },
  },
  input: z.strictObject({ project_id: theProject, checkpoint_id: checkpointId }),
  output: restoreOutcome,
  readOnly: false,
  errors: ['invalid_project_id', 'project_not_found', 'checkpoint_not_found', 'project_busy', 'save_conflict', 'store_unavailable', 'no_space'],
  describe: () =>
    'Undo back to a checkpoint: make the project exactly as it was then. Files made since are deleted, deleted ones come back, ' +
    'and changes made by commands are undone too (contents, modes, symlinks, empty folders). It first checkpoints the current ' +
    'state and names it in the answer (undo_checkpoint_id), so the restore itself can be undone. Refused with project_busy ' +
    "while a command runs in the project: wait for it or cancel it first. The project's shells end (the next shell " +
    'call starts a fresh one in the project root).',
  examples: [{ project_id: 'demo-attempt-2', checkpoint_id: 'cp_0123456789abcdef' }],
  job: { type: 'checkpoint_restore', lane: 'files', mutates: true, projectOp: 'checkpoint_restore' },
  toModel: (r) => [
    {
      type: 'text',
      text:
        `Restored ${r.project_id} to ${r.checkpoint_id}: ${r.files_written} files written, ${r.files_deleted} deleted. ` +
        `The state before the restore is checkpoint ${r.undo_checkpoint_id}; restore that one to undo this.`,
    },
  ],
});

export const projectForkTool = projectOpTool({
  name: 'project_fork',
  title: 'Fork a project',
  route: { method: 'POST', path: '/projects/{project_id}/fork', notFound: 'invalid_project_id' },
  input: z.strictObject({
    project_id: theProject,
    new_project_id: projectId.describe('The id of the new project (refused with project_exists when taken).'),
    checkpoint_id: checkpointId.optional().describe('Fork from this checkpoint instead of the current state.'),
  }),
  output: forkOutcome,
  readOnly: false,
  errors: ['invalid_project_id', 'project_not_found', 'checkpoint_not_found', 'project_exists', 'save_conflict', 'store_unavailable'],
  describe: () =>
    'Make a new project that starts as a copy of this one (its current state, or a checkpoint). Use it to try alternatives ' +
    'in parallel (best-of-N): fork once per attempt, work in each fork, run the tests in each, and keep the best. Each fork is ' +
    'an independent project: changes to it never reach the source, nor the other way round. It is quick whatever the ' +
    "project's size: forks share stored data until they change it.",
  examples: [{ project_id: 'demo', new_project_id: 'demo-attempt-1' }],
  job: { type: 'project_fork', lane: 'files', mutates: false, projectOp: 'project_fork' },
  toModel: (f) => [{ type: 'text', text: forkText(f) }],
});

function forkText(f: z.infer<typeof forkOutcome>): string {
  const from = f.checkpoint_id === null ? 'its current state' : `checkpoint ${f.checkpoint_id}`;
  return `Forked ${f.source_project_id} into ${f.project_id} from ${from}. Pass project_id "${f.project_id}" to work in the fork; ${f.source_project_id} is unchanged.`;
}

/** The checkpoint and fork tools, in the order models see them. */
export const CHECKPOINT_TOOLS = [checkpointCreateTool, checkpointListTool, checkpointRestoreTool, projectForkTool] as const;
