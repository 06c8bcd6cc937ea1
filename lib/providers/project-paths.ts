/**
 * Paths as the providers' built-in tools send them, made project-relative. Anthropic's text editor takes absolute
 * paths and OpenAI's apply_patch may send them; toolhost's file tools take paths relative to the project root. The
 * rule: a path that starts with the project's root as commands see it (the working copy's absolute path, which
 * `pwd` shows in a fresh shell) is taken relative to that root; any other path starting with "/" is taken relative to
 * the root too ("/" is the root, "/src/app.ts" is src/app.ts); a relative path is relative to the root. What the
 * result names is then checked by the file tools themselves: ".." out of the project and symlinks out are refused
 * there (path_outside_project), whatever the path looked like here.
 */

/** `path` relative to the project root, given the absolute forms of that root (`roots`, without trailing slash). */
export function projectRelative(path: string, roots: readonly string[]): string {
  for (const root of roots) {
    if (root.length > 1 && (path === root || path.startsWith(`${root}/`))) return strip(path.slice(root.length));
  }
  return path.startsWith('/') ? strip(path) : path;
}

/** A path with its leading slashes removed; "." for the root itself. */
function strip(path: string): string {
  const rel = path.replace(/^\/+/, '');
  return rel === '' ? '.' : rel;
}
