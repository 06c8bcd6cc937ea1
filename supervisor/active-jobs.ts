/**
 * Jobs of each project received and not completed. The pump counts them; the project cache reads them (a project
 * with active jobs is never evicted or replaced). Built before both, so neither needs the other.
 */
export class ActiveJobs {
  readonly #byProject = new Map<string, number>();

  add(projectId: string): void {
    this.#byProject.set(projectId, this.count(projectId) + 1);
  }

  remove(projectId: string): void {
    const n = this.count(projectId) - 1;
    if (n <= 0) this.#byProject.delete(projectId);
    else this.#byProject.set(projectId, n);
  }

  count(projectId: string): number {
    return this.#byProject.get(projectId) ?? 0;
  }
}
