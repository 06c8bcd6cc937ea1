/**
 * The project tools: list projects, show one, create an empty one, save one. The supervisor answers them itself:
 * listing and showing work on every role (from the store where there are no working copies), creating and saving
 * need the working copies of a process that runs jobs (role "all" or "worker"). Uploads (PUT), deletes and
 * evictions stay plain HTTP routes (project-routes.ts): an archive body is not a tool call, and removing a
 * project is the operator's decision, not a model's.
 */
import { z } from 'zod';
import { ToolhostError, toToolhostError } from '../../lib/errors.js';
import { projectId } from '../../lib/schemas.js';
import { notFound, type StoredProject } from '../../lib/store/project-store.js';
import { emptyProjectArchive } from '../project-create.js';
import type { ProjectCache } from '../projects.js';
import type { AppDeps } from './deps.js';
import { type SupervisorTool, supervisorTool } from './job-tools.js';

/** Checks a project tool's definition against its schemas (and infers their types). */

const error = z.strictObject({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() });

const projectSummary = z.strictObject({
  project_id: z.string(),
  format: z.string().describe('How the store holds it: layers (saved by toolhost), or a plain zip or tar.gz archive placed there.'),
  archive_bytes: z.number().int().nullable().describe('Size of the stored archive (for layers: of the manifest); null when the store has none.'),
  modified_at: z.string().nullable(),
  etag: z.string().nullable(),
  cached: z.boolean().describe('A working copy is on this process.'),
  dirty: z.boolean().describe('The working copy may hold changes the store does not have yet.'),
});

const projectInfo = projectSummary.extend({
  cache: z
    .strictObject({
      size_bytes: z.number().int(),
      last_access: z.string(),
      materialized_at: z.string(),
      source_etag: z.string().nullable(),
      last_save: z.string().nullable(),
      writeback_error: error.extend({ since: z.string(), attempts: z.number().int() }).nullable(),
      last_conflict: z.strictObject({ conflict_blob: z.string(), at: z.string() }).nullable(),
    })
    .nullable()
    .describe('The working copy, null when not cached.'),
  store_error: error.optional().describe('Set when the store could not be asked; the cache fields still show.'),
});
type ProjectInfoOut = z.infer<typeof projectInfo>;

const saveResult = z.strictObject({
  project_id: z.string(),
  saved: z.boolean().describe('A checkpoint was recorded (false: not cached, or nothing changed since the last save).'),
  etag: z.string().nullable(),
  archive_bytes: z.number().int().nullable(),
  dirty: z.boolean(),
  last_save: z.string().nullable(),
  skipped: z.array(z.strictObject({ name: z.string(), reason: z.string() })).describe('Left out of the archive (it could not be extracted again).'),
  checkpoint_id: z.string().nullable().describe('The checkpoint this save recorded (every save that changed something is one); null when nothing changed.'),
  bytes_uploaded: z.number().int().describe('Bytes the store took: only what changed since the last save (a layer and its index).'),
});

const theProject = projectId.describe('The project.');

/** What GET /projects and GET /projects/:id answer from: the working copies, else the store. */
type ProjectListing = Pick<ProjectCache, 'list' | 'info'>;

function listing(d: AppDeps): ProjectListing {
  if (d.worker) return d.worker.projects;
  const view = (p: StoredProject) => ({
    project_id: p.id,
    format: p.format,
    archive_bytes: p.size,
    modified_at: p.modifiedAt,
    etag: p.etag,
    cached: false,
    dirty: false,
  });
  return {
    list: async () => (await d.store.list()).map(view),
    info: async (id) => {
      const stored = await d.store.stat(id);
      if (!stored) throw notFound(id);
      return { ...view(stored), cache: null };
    },
  };
}

/** The working copies; a process without them (role "api") refuses. */
export function projectCache(d: AppDeps): ProjectCache {
  if (!d.worker) {
    throw new ToolhostError(
      'not_on_this_role',
      'this process has role "api" and holds no working copies; create, save, upload or delete projects through a process with role "all" or "worker"',
    );
  }
  return d.worker.projects;
}

function infoText(p: ProjectInfoOut): string {
  const state = p.cached ? (p.dirty ? 'cached, unsaved changes' : 'cached, saved') : 'not cached';
  const stored =
    p.modified_at === null
      ? 'not in the store'
      : p.format === 'layers'
        ? `stored as layers (see checkpoint_list), saved ${p.modified_at}`
        : `${p.format} archive of ${p.archive_bytes} bytes, saved ${p.modified_at}`;
  return `Project ${p.project_id}: ${stored}; ${state}.`;
}

export const projectListTool = supervisorTool({
  name: 'project_list',
  title: 'List projects',
  route: { method: 'GET', path: '/projects' },
  input: z.strictObject({}),
  output: z.strictObject({ projects: z.array(projectSummary) }),
  readOnly: true,
  errors: ['store_unavailable'],
  describe: () => 'List every project: its id, whether it is in the store, cached here, and has unsaved changes.',
  examples: [{}],
  serve: async (d) => ({ projects: await listing(d).list() }),
  toModel: (out, _in, config) => {
    const lines = out.projects.map((p) => `${p.project_id}${p.dirty ? ' (unsaved changes)' : ''}`);
    let text = lines.length === 0 ? 'No projects; create one with project_create.' : `${lines.length} projects:\n`;
    let shown = 0;
    for (const line of lines) {
      if (text.length + line.length + 1 > config.budgets.listChars) break;
      text += `${line}\n`;
      shown++;
    }
    if (shown < lines.length) text += `[${lines.length - shown} more not shown; ask project_info {project_id} for one]\n`;
    return [{ type: 'text', text: text.trimEnd() }];
  },
});

export const projectInfoTool = supervisorTool({
  name: 'project_info',
  title: 'Show a project',
  route: { method: 'GET', path: '/projects/{project_id}', notFound: 'invalid_project_id' },
  input: z.strictObject({ project_id: theProject }),
  output: projectInfo,
  readOnly: true,
  errors: ['invalid_project_id', 'project_not_found', 'store_unavailable'],
  describe: () =>
    'Show one project: its stored archive (format, size, last save) and its working copy here (cached, unsaved changes, last save, a failing write-back).',
  examples: [{ project_id: 'demo' }],
  serve: (d, q) => listing(d).info(q.project_id),
  toModel: (out) => [{ type: 'text', text: infoText(out) }],
});

export const projectCreateTool = supervisorTool({
  name: 'project_create',
  title: 'Create an empty project',
  route: { method: 'POST', path: '/projects/{project_id}', notFound: 'invalid_project_id' },
  input: z.strictObject({
    project_id: theProject,
    git_init: z.boolean().default(false).describe('Start it as a git repository (branch main, no commits), as git init does.'),
  }),
  output: projectInfo,
  readOnly: false,
  errors: ['invalid_project_id', 'project_exists', 'not_on_this_role', 'store_unavailable', 'no_space'],
  describe: () =>
    'Create a new, empty project (stored at once), optionally a git repository (git_init: true). Refused with ' +
    'project_exists when the id is taken. Then write files into it with file_write and run commands with execute.',
  examples: [{ project_id: 'scratch-demo', git_init: true }],
  serve: async (d, q) => {
    const projects = projectCache(d);
    const archive = await emptyProjectArchive(projects.tmpDir, q.git_init);
    try {
      return (await projects.put(q.project_id, archive, { replace: false, as: 'create' })).info;
    } catch (err) {
      const e = toToolhostError(err);
      if (e.code !== 'project_exists') throw e;
      throw new ToolhostError('project_exists', `project "${q.project_id}" already exists; use it as it is, or pick another project_id`, {
        project_id: q.project_id,
      });
    }
  },
  toModel: (out, q) => [
    { type: 'text', text: `Created project ${out.project_id}${q.git_init ? ' as a git repository (branch main, no commits)' : ''}; it is empty.` },
  ],
});

export const projectSaveTool = supervisorTool({
  name: 'project_save',
  title: 'Save a project',
  route: { method: 'POST', path: '/projects/{project_id}/save', notFound: 'invalid_project_id' },
  input: z.strictObject({ project_id: theProject }),
  output: saveResult,
  readOnly: false,
  errors: [
    'invalid_project_id',
    'project_not_found',
    'save_conflict',
    'archive_too_large',
    'unsafe_archive_entry',
    'not_on_this_role',
    'store_unavailable',
    'no_space',
  ],
  describe: () =>
    "Write the project's working copy back to the store now (it is also saved on eviction and at shutdown). If the " +
    'stored archive changed meanwhile, nothing is overwritten: the copy is kept beside it as a conflict copy and the ' +
    'answer is save_conflict naming both.',
  examples: [{ project_id: 'demo' }],
  serve: (d, q) => projectCache(d).save(q.project_id),
  toModel: (out) => {
    const skipped = out.skipped.length > 0 ? ` ${out.skipped.length} entries left out: ${out.skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}.` : '';
    const what = out.saved
      ? `Saved ${out.project_id} as checkpoint ${out.checkpoint_id} (${out.bytes_uploaded} bytes uploaded).`
      : `Nothing to save in ${out.project_id}: no changes since the last save.`;
    return [{ type: 'text', text: `${what}${out.dirty ? ' Changes made since then are not in it yet.' : ''}${skipped}` }];
  },
});

/** The project tools, in the order models see them. */
export const PROJECT_TOOLS: readonly SupervisorTool[] = [projectListTool, projectInfoTool, projectCreateTool, projectSaveTool];
