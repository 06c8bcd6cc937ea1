/**
 * The /etc a sandboxed command sees: a whitelist of entries programs need (no secrets), copied once at start into
 * `<dataDir>/sandbox/etc` so a launch binds one folder, with resolv.conf and hosts bound live.
 */
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const etcCopies = new Map<string, string | null>();
/** The /etc copy that {@link prepareEtc} made for `dataDir`, if any (looked up once per thread). */
export function preparedEtc(dataDir: string): string | null {
  let dir = etcCopies.get(dataDir);
  if (dir === undefined) {
    dir = join(dataDir, 'sandbox', 'etc');
    if (!existsSync(join(dir, '.complete'))) dir = null;
    etcCopies.set(dataDir, dir);
  }
  return dir;
}

/** True for a symlink, a file others may read, or a folder others may list and enter. */
function worldReadable(src: string): boolean {
  const st = lstatSync(src);
  if (st.isSymbolicLink()) return true;
  const need = st.isDirectory() ? 0o005 : 0o004;
  return (st.mode & need) === need;
}

/** /etc entries bound live rather than copied: they change while the service runs (DHCP, VPNs). */
export const ETC_LIVE = ['resolv.conf', 'hosts'];

/**
 * Copies the allowed /etc entries into `<dataDir>/sandbox/etc` at start, so a sandbox binds one folder instead of
 * dozens of entries (each bind is a mount: together a sixth of a launch). Empty files stand where passwd, group
 * and the live entries are bound. Changes to /etc other than resolv.conf and hosts need a restart to be seen.
 */
export function prepareEtc(dataDir: string): void {
  const dir = join(dataDir, 'sandbox', 'etc');
  rmSync(dirname(dir), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dirname(dir), 0o711);
  for (const name of allowedEtc()) {
    if (ETC_LIVE.includes(name)) continue;
    try {
      // Only what other users may read: the sandbox's uid could read nothing else, and secrets (ssl/private)
      // are not copied around.
      cpSync(`/etc/${name}`, join(dir, name), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true, filter: worldReadable });
    } catch {
      // unreadable or gone: the sandbox goes without it, as it would without a bind
    }
  }
  for (const name of ['passwd', 'group', ...ETC_LIVE]) writeFileSync(join(dir, name), '', { mode: 0o644 });
  writeFileSync(join(dir, '.complete'), '');
  etcCopies.delete(dataDir);
}

/**
 * What of /etc a command sees: what programs need to start, resolve names, verify TLS and find their
 * alternatives, and nothing that holds secrets (shadow, ssh keys, sudoers, toolhost's config, package manager
 * credentials). Entries ending in "*" are prefixes (java-17-openjdk, python3.11).
 */
const ETC_ALLOWED = [
  'alternatives',
  'bash.bashrc',
  'ca-certificates',
  'ca-certificates.conf',
  'debian_version',
  'ethertypes',
  'fonts',
  'gai.conf',
  'gitconfig',
  'host.conf',
  'hosts',
  'inputrc',
  'iproute2',
  'java-*',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'locale.alias',
  'localtime',
  'magic',
  'magic.mime',
  'manpath.config',
  'maven',
  'mime.types',
  'mtab',
  'networks',
  'nsswitch.conf',
  'os-release',
  'perl',
  'profile',
  'protocols',
  'python*',
  'resolv.conf',
  'rpc',
  'services',
  'sgml',
  'shells',
  'ssl',
  'terminfo',
  'timezone',
  'vim',
  'wgetrc',
  'xml',
];

let etcEntries: string[] | undefined;
/** The allowed /etc entries present on this machine, listed once. */
export function allowedEtc(): string[] {
  if (!etcEntries) {
    const names = new Set<string>();
    let listing: string[] = [];
    try {
      listing = readdirSync('/etc');
    } catch {
      // no /etc to show
    }
    for (const pattern of ETC_ALLOWED) {
      if (!pattern.endsWith('*')) {
        if (listing.includes(pattern)) names.add(pattern);
        continue;
      }
      for (const n of listing) if (n.startsWith(pattern.slice(0, -1))) names.add(n);
    }
    etcEntries = [...names].sort();
  }
  return etcEntries;
}
