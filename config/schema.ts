/**
 * The configuration schema: every option, its type, its bounds and a one-line doc. Defaults live in
 * config/default.json (one place an operator can read them); this file validates the merged result once at
 * start-up. Unknown keys are errors, so a typo in a config file is caught rather than silently ignored.
 */
import { z } from 'zod';

const positiveInt = () => z.number().int().positive();

/** The longest a request may wait: HTTP clients (undici, fetch) give up at 300 s. */
export const MAX_WAIT_S = 190;
const nonNegativeInt = () => z.number().int().nonnegative();

/** The schema of the whole configuration file. */
export const configSchema = z.strictObject({
  host: z.string().min(1).describe('Address the HTTP front binds to; anything but loopback (127.0.0.1, ::1, localhost) requires auth "token".'),
  port: z.number().int().min(0).max(65535).describe('TCP port of the HTTP front (0 picks a free one).'),
  dataDir: z.string().min(1).describe('Folder for the project store, project caches and homes.'),
  auth: z
    .enum(['token', 'none'])
    .describe(
      '"token": every route needs "Authorization: Bearer <token>" (/health without it says only its status); "none": no auth, allowed only when host is loopback (the Host and Origin checks still apply).',
    ),
  token: z
    .string()
    .min(16)
    .nullable()
    .describe(
      'The bearer token (env TOOLHOST_TOKEN; at least 16 visible ASCII characters). null: read from <dataDir>/token, which the first start creates (32 random bytes, base64url, mode 0600); the start log names the file, never the token.',
    ),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).describe('pino log level.'),
  role: z
    .enum(['all', 'api', 'worker'])
    .describe(
      '"all": one machine does everything; "api": HTTP front that enqueues; "worker": pump, pools, cache and janitor (env TOOLHOST_ROLE; api and worker need queue.backend "azure").',
    ),
  nodeId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,40}$/, 'must be 1-40 letters, digits, ".", "_" or "-"')
    .nullable()
    .describe(
      'Name of this process among its peers (env TOOLHOST_NODE_ID; null: hostname-pid). A worker restarted with the same nodeId takes back its project leases at once.',
    ),
  http: z.strictObject({
    maxBodyBytes: positiveInt().describe('Largest JSON request body; larger bodies get 413.'),
    maxArchiveBytes: positiveInt().describe('Largest archive accepted by PUT /projects/:id; larger gets 413.'),
    requestTimeoutS: positiveInt().describe('How long a request waits for a non-command job before 504 job_deadline.'),
    allowedHosts: z
      .array(z.string().min(1))
      .describe(
        'Host header names accepted besides loopback ones (localhost, 127.x.x.x, [::1]): the bare names (no scheme, no port; case-insensitive) this server is reached by, e.g. "toolhost.internal". Any other Host gets 403, which defeats DNS rebinding.',
      ),
    allowedOrigins: z
      .array(z.string().min(1))
      .describe(
        'Browser origins (scheme://host[:port], e.g. "https://console.example.com") whose cross-origin requests (and CORS preflights) are accepted; a request with any other Origin header, "null" included, gets 403. Requests without Origin (curl, SDKs) are unaffected.',
      ),
  }),
  queue: z.strictObject({
    backend: z
      .enum(['memory', 'azure'])
      .describe('Job queue backend: "memory" (embedded, in-process) or "azure" (Azure Queue Storage; env TOOLHOST_QUEUE; needs store.backend "azure").'),
    maxDepth: positiveInt().describe('Most jobs accepted and not yet finished (per API process); beyond it requests get 503 queue_full with Retry-After.'),
    maxDequeueCount: positiveInt().describe(
      'A job delivered this many times (its thread crashed each time) goes to the <queue>-poison queue and its caller gets 500 job_poisoned.',
    ),
    azure: z.strictObject({
      connectionString: z
        .string()
        .min(1)
        .nullable()
        .describe('Storage account connection string for queues and coordination blobs (env AZURE_STORAGE_CONNECTION_STRING).'),
      prefix: z
        .string()
        .regex(/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,19}$/, 'must be 3-20 lowercase letters, digits and single hyphens')
        .describe('Name prefix of every queue (<prefix>-jobs, <prefix>-replies-<nodeId>...) and of the <prefix>-state container.'),
      visibilityS: z
        .number()
        .int()
        .min(5)
        .max(600)
        .describe(
          "Seconds a received job stays invisible; renewed every third of it while the job runs, so a dead worker's jobs reappear this long after it died.",
        ),
      leaseS: z
        .number()
        .int()
        .min(15)
        .max(60)
        .describe("Seconds of a project (and worker) lease; renewed every third of it, so a dead worker's projects are taken over this long after it died."),
      pollMinMs: positiveInt().describe('Delay between polls while messages flow (doubles on every empty poll, with jitter).'),
      pollMaxMs: positiveInt().describe(
        'Idle polling pace: an idle worker polls its own queue and the shared one in turn, together no more often than once per pollMaxMs (each every 2-2.6 x pollMaxMs), so a job sent by another process to an idle worker may wait that long.',
      ),
      deadlineBaseS: z
        .number()
        .positive()
        .describe('Client-side deadline of every Queue Storage call (and coordination blob call), retries included, before its bytes: base seconds.'),
      minBytesPerS: positiveInt().describe(
        'Slowest transfer tolerated by a queue call (bytes/s): one moving N bytes may take deadlineBaseS + N / minBytesPerS seconds, then fails queue_unavailable.',
      ),
    }),
  }),
  pool: z.strictObject({
    maxThreads: z.union([z.literal('auto'), positiveInt()]).describe('Threads of the file-tool pool; "auto" is (2 x cores) + 1.'),
    idleTimeoutS: positiveInt().describe('Seconds an idle pool thread lives before it is retired.'),
  }),
  commands: z.strictObject({
    maxConcurrent: positiveInt().describe('Command slots: most shell commands running at once on this machine.'),
    maxPerProject: positiveInt().describe('Most shell commands running at once in one project; more wait their turn.'),
    threads: positiveInt().describe('Threads of the command pool; each hosts several commands (they mostly wait on I/O).'),
    defaultTimeoutS: positiveInt().describe('timeout_s of /execute when the request gives none (background jobs get maxTimeoutS).'),
    defaultWaitS: z
      .number()
      .int()
      .min(0)
      .max(MAX_WAIT_S)
      .describe(`wait_s of /execute when the request gives none (at most ${MAX_WAIT_S}: HTTP clients give up at 300 s).`),
    maxTimeoutS: positiveInt().describe('Largest timeout_s a request may ask for.'),
    killGraceS: nonNegativeInt().describe('Seconds between SIGTERM and SIGKILL when a command tree is killed.'),
    nice: z
      .number()
      .int()
      .min(0)
      .max(19)
      .describe(
        'Niceness of commands and session shells (0-19; their children inherit it), and of the session group each command leads where the kernel groups tasks by session (autogroup): a CPU-bound build then yields the cores to the file lane, so reads stay fast while commands fill every core. 0 turns both off.',
      ),
    maxOutputBytes: positiveInt().describe(
      "Bytes of stdout and of stderr a command's thread holds in memory (half head, half tail), from which its final answer is cut to the output budget; the log keeps all of it.",
    ),
    maxLogBytes: positiveInt().describe('Bytes of stdout and of stderr spooled to disk per command, readable by offset.'),
    path: z
      .string()
      .min(1)
      .regex(/^\/[^:]*(?::\/[^:]*)*$/, 'must be absolute folders separated by ":"')
      .nullable()
      .describe(
        "PATH inside commands (null: the system's, /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin). Never toolhost's own PATH, so a project's tools are not shadowed by toolhost's node_modules/.bin.",
      ),
    sandbox: z
      .enum(['none', 'bwrap', 'auto'])
      .describe(
        '"bwrap": bubblewrap sandbox (user namespace without capabilities, only system folders read-only, project and HOME read-write, private /tmp, own pid namespace); "auto": bwrap when installed, else none with a loud warning; "none": no sandbox, explicitly (still an unprivileged uid per project when toolhost runs as root).',
      ),
    network: z
      .boolean()
      .describe("Whether commands get outbound network (through pasta, never the host's loopback); needs bwrap and pasta (apt-get install passt)."),
    readOnlyPaths: z
      .array(z.string().regex(/^\//, 'must be an absolute path'))
      .describe('Extra host folders shown read-only inside the sandbox, for toolchains installed outside /usr, /bin, /lib and /opt (e.g. "/root/.cargo").'),
    uidBase: z
      .number()
      .int()
      .min(1000)
      .max(4_000_000_000)
      .describe(
        "When toolhost runs as root, each project's commands run as its own uid from uidBase to uidBase + uidCount - 1 (allocated once, recorded in <dataDir>/uids).",
      ),
    uidCount: z.number().int().min(1).max(100_000_000).describe('How many uids projects may get (see uidBase).'),
    limits: z.strictObject({
      addressSpaceBytes: nonNegativeInt().describe('RLIMIT_AS of each command process (0: unlimited).'),
      cpuSeconds: nonNegativeInt().describe('RLIMIT_CPU of each command process (0: unlimited).'),
      processes: nonNegativeInt().describe('Most processes of one command (pids cgroup where available, else RLIMIT_NPROC; 0: unlimited).'),
      openFiles: nonNegativeInt().describe('RLIMIT_NOFILE of each command process (0: unlimited).'),
      fileSizeBytes: nonNegativeInt().describe('RLIMIT_FSIZE: largest file a command may write (0: unlimited).'),
    }),
  }),
  jobs: z.strictObject({
    retentionMinutes: positiveInt().describe('Finished command jobs and their logs are kept this long, then removed.'),
    maxLogDiskBytes: positiveInt().describe('Disk budget of all job logs; beyond it the oldest finished jobs lose their logs first.'),
  }),
  sessions: z.strictObject({
    max: positiveInt().describe('Most persistent shell sessions alive at once on this machine (POST /sessions, the bash and shell tools).'),
    maxPerProject: positiveInt().describe('Most persistent shell sessions alive at once in one project.'),
    idleMinutes: positiveInt().describe('A session with no command running for this long is ended (its shell and everything it started).'),
  }),
  files: z.strictObject({
    maxReadBytes: positiveInt().describe('Most bytes of content one /file/read returns; larger reads are cut at a line end.'),
    maxWriteBytes: positiveInt().describe('Largest content /file/write and /file/edit accept or produce.'),
  }),
  budgets: z.strictObject({
    outputChars: positiveInt().describe(
      "Characters of a command's output (stdout and stderr together) in one answer, cut on line boundaries, head and tail; a call may pass max_output_chars.",
    ),
    readLines: positiveInt().describe('Lines one file_read returns when it names no end_line.'),
    lineChars: positiveInt().describe('Characters of one line a file_read, search or glob answer shows; longer lines are cut and say so.'),
    readChars: positiveInt().describe('Characters of content one file_read returns, cut at a line end.'),
    listChars: positiveInt().describe('Characters of the text a model gets from search, file_glob and file_list, cut at an entry boundary.'),
    searchResults: positiveInt().describe('Matches a search returns when it names no max_results (the total is still counted).'),
    globResults: positiveInt().describe('Paths a file_glob returns when it names no max_results (the total is still counted).'),
    imageBytes: positiveInt().describe('Largest image (png, jpeg, gif, webp) file_read returns as an image.'),
    imageSide: positiveInt().describe(
      'Most pixels on either side of an image file_read returns as an image (Anthropic refuses images over 8000 px a side, and one refused image fails every later request of the conversation).',
    ),
  }),
  mcp: z.strictObject({
    defaultWaitS: z
      .number()
      .int()
      .min(0)
      .max(MAX_WAIT_S)
      .describe(
        "wait_s of a command called through MCP when the call gives none, and the most any MCP call waits (execute or job_status): below the MCP TypeScript SDK's default request timeout (60 s), so the client gets the job_id before it gives up.",
      ),
    progressIntervalS: positiveInt().describe(
      'While a command runs, an MCP call that sent a progressToken gets a progress notification this often, with the output so far.',
    ),
  }),
  search: z.strictObject({
    timeoutS: positiveInt().describe('A search still running after this is stopped and returns what it found.'),
    maxResults: positiveInt().describe('Largest max_results a /search may ask for.'),
    maxMemoryBytes: positiveInt().describe('RLIMIT_AS of the ripgrep process of one search.'),
    maxLineBytes: positiveInt().describe('Lines longer than this are not searched; the answer counts them (skipped_long_lines) and is marked incomplete.'),
  }),
  list: z.strictObject({
    maxEntries: positiveInt().describe('Most entries one /file/list returns.'),
    maxDepth: positiveInt().describe('Largest depth a /file/list may ask for.'),
  }),
  archive: z.strictObject({
    maxEntries: positiveInt().describe('Most entries an archive may hold.'),
    maxTotalBytes: positiveInt().describe('Most bytes an archive may expand to.'),
    maxRatio: positiveInt().describe('Largest expanded/compressed size ratio before an archive counts as a bomb.'),
  }),
  store: z.strictObject({
    backend: z
      .enum(['local', 'azure'])
      .describe('Project store: "local" keeps archives in the store/ folder of dataDir; "azure" in Azure Blob Storage (env TOOLHOST_STORE).'),
    exclude: z
      .array(z.string().min(1))
      .describe(
        'gitignore-style patterns left out when a working copy is saved (.git is kept unless listed); what they match is not written back and is gone once the copy is evicted.',
      ),
    azure: z.strictObject({
      connectionString: z.string().min(1).nullable().describe('Storage account connection string (env AZURE_STORAGE_CONNECTION_STRING); or set accountUrl.'),
      accountUrl: z
        .string()
        .url()
        .nullable()
        .describe('Blob endpoint, e.g. https://<account>.blob.core.windows.net, authenticated with DefaultAzureCredential.'),
      container: z
        .string()
        .regex(/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/, 'must be a valid container name (3-63 lowercase letters, digits and single hyphens)')
        .describe('Container holding <project_id>.zip / <project_id>.tar.gz blobs (created when missing).'),
      prefix: z
        .string()
        .regex(/^(?:[A-Za-z0-9._-]+\/)*$/, 'must be empty or end with "/" (e.g. "team-a/")')
        .describe('Blob name prefix of every project, e.g. "team-a/" (empty: none).'),
      deadlineBaseS: z
        .number()
        .positive()
        .describe(
          'Client-side deadline of every Blob call, retries included, before its bytes: base seconds; a call past its deadline is dropped and fails store_unavailable, so a dead connection never holds a project.',
        ),
      minBytesPerS: positiveInt().describe(
        'Slowest transfer tolerated (bytes/s): a Blob call moving N bytes may take deadlineBaseS + N / minBytesPerS seconds.',
      ),
    }),
  }),
  cache: z.strictObject({
    ttlHours: z.number().positive().describe('A cached working copy idle this long is written back (if dirty) and evicted.'),
    maxBytes: nonNegativeInt().describe('Disk budget of all working copies; beyond it the least recently used idle ones are evicted (0: no budget).'),
    janitorIntervalS: positiveInt().describe('Mean seconds between janitor runs (jittered +-20%).'),
    retryS: positiveInt().describe('Seconds before a failed write-back is tried again.'),
    autosaveMinutes: z
      .number()
      .nonnegative()
      .describe(
        'A dirty working copy is written back this often even while in use, bounding what a dead worker can lose (0: only on eviction, save and shutdown).',
      ),
  }),
  checkpoints: z.strictObject({
    auto: z.boolean().describe('Also take a checkpoint after every command and every mutating tool call (every save and autosave is one already).'),
    keep: z.strictObject({
      count: positiveInt().describe('Most checkpoints kept per project; the oldest go first (the newest always stays).'),
      maxAgeHours: z.number().positive().describe('Checkpoints older than this are dropped (the newest always stays).'),
    }),
    maxLayers: positiveInt().describe(
      "A project's stored layers are merged (off the request path, when its copy is evicted) once its chain is longer than this.",
    ),
    collectIntervalMinutes: z.number().nonnegative().describe('How often stored layers no checkpoint names are deleted (0: never).'),
    collectGraceMinutes: z
      .number()
      .nonnegative()
      .describe('Only layers unnamed and older than this are deleted, so a save that has uploaded its layer but not yet its manifest keeps it.'),
  }),
  shutdown: z.strictObject({
    graceS: nonNegativeInt().describe('On SIGTERM, seconds in-flight jobs get to finish before their processes are killed.'),
  }),
});

/** The configuration as written in a file (before defaults are resolved). */
export type RawConfig = z.infer<typeof configSchema>;

/** The configuration the rest of the code receives: complete, resolved and frozen. */
export type Config = Readonly<Omit<RawConfig, 'pool'> & { pool: Readonly<{ maxThreads: number; idleTimeoutS: number }> }>;
