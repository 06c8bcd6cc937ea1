/**
 * The shapes every scenario and the runner share: a scenario measures and returns figures; the runner compares
 * them with their targets. Scenarios never decide pass or fail themselves, so no figure can be nudged into a pass.
 */

/** A target a figure must meet: a bound on its toolhost value or on the ratio toolhost / baseline. */
export interface Target {
  of: 'ratio' | 'value';
  op: '<=' | '>=' | '<';
  limit: number;
}

/** One measured figure of a scenario. */
export interface Figure {
  /** What was measured, e.g. "p50 latency". */
  figure: string;
  /** Unit of `value` and `baseline`, e.g. "ms", "req/s", "MB". */
  unit: string;
  /** The toolhost figure. */
  value: number;
  /** The same figure for the baseline, when there is one. */
  baseline?: number;
  /** Absent for figures shown for information only. */
  target?: Target;
  /** Anything a reader needs to interpret the figure. */
  note?: string;
}

/** What a scenario gets from the runner. */
export interface ScenarioContext {
  /** Tiny sizes and few iterations: checks that the scenario still runs, not how fast. */
  smoke: boolean;
  /** A temp folder of this scenario's own, removed when it ends. */
  tmp: string;
  /** Progress line on stderr. */
  log(message: string): void;
}

/** A benchmark scenario: one file in bench/scenarios/. */
export interface Scenario {
  name: string;
  description: string;
  run(ctx: ScenarioContext): Promise<Figure[]>;
}

/** Thrown by a scenario whose feature has not landed; the runner lists it as "not built". */
export class NotBuilt extends Error {
  override readonly name = 'NotBuilt';
}
