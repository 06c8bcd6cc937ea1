/** The tool registry: job type -> handler. One file per tool; this is the only place that lists them. */
import type { JobType } from '../lib/jobs.js';
import type { Handler } from './context.js';
import { execute } from './execute.js';
import { fileEdit } from './file-edit.js';
import { fileList } from './file-list.js';
import { fileRead } from './file-read.js';
import { fileWrite } from './file-write.js';
import { search } from './search.js';

/** Every handler by the job type it serves. Requests arrive validated by the HTTP front. */
export const HANDLERS: Record<JobType, Handler<never, unknown>> = {
  execute,
  'file.read': fileRead,
  'file.write': fileWrite,
  'file.edit': fileEdit,
  'file.list': fileList,
  search,
};
