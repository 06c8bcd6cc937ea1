/** What /health (behind auth) and the start banner say about how commands are contained. A leaf: imports nothing. */

/** The containment in force on this machine, resolved once at start. */
export interface Containment {
  /** "bwrap": bubblewrap sandbox; "none": commands run on the host file system. */
  sandbox: 'bwrap' | 'none';
  /** Whose uid commands run as: a uid of the project's own (toolhost is root) or toolhost's own. */
  user: 'project-uid' | 'toolhost-uid';
  /** Capabilities a command holds on the host: always none with bwrap (user namespace, all dropped). */
  capabilities: 'none' | 'inherited';
  /** "off": no network; "pasta": outbound through user-mode networking, never the host's loopback. */
  network: 'off' | 'pasta';
  /** How the process count of a command is capped. */
  process_limit: 'cgroup' | 'rlimit';
  /** Host folders a sandboxed command sees read-only (empty without bwrap: it sees what its uid may read). */
  read_only: string[];
  /** What is not protected here and how to fix it; empty when fully contained. */
  warnings: string[];
}
