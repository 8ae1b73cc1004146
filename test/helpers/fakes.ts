/**
 * Typed fake activity factories for orchestration tests: the activities a
 * workflow proxies, answered in the test's process, every call recorded. A
 * fake has the real factory's type, so a changed activity signature breaks
 * the test at compile time, not at run time.
 */
import { ApplicationFailure } from '@temporalio/common';

type AnyActivity = (...args: never[]) => Promise<unknown>;

/** One call of a fake activity, in the order the worker ran them. */
export interface ActivityCall {
  activity: string;
  args: unknown[];
}

/** What a set of fakes was asked to do, shared by every fake of a worker. */
export class ActivityCalls {
  readonly all: ActivityCall[] = [];

  /** The arguments of every call of `activity`, in order. */
  of(activity: string): unknown[][] {
    return this.all.filter((c) => c.activity === activity).map((c) => c.args);
  }

  /** The names of the activities called, in order (`only`: those among them). */
  names(only?: readonly string[]): string[] {
    return this.all.map((c) => c.activity).filter((name) => !only || only.includes(name));
  }
}

/** The activity names of a real factory's result (built without clients: nothing runs). */
export function activityNames<T extends object>(built: T): Array<keyof T & string> {
  return Object.keys(built) as Array<keyof T & string>;
}

/**
 * The activities `names` as fakes of type `T`: `answers` say what the test expects to be called;
 * any other activity fails its call without retries, naming itself.
 */
export function fakeActivities<T extends Record<keyof T, AnyActivity>>(names: ReadonlyArray<keyof T & string>, answers: Partial<T>, calls: ActivityCalls): T {
  const fakes: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of names) {
    const answer = answers[name] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    fakes[name] = async (...args: unknown[]) => {
      calls.all.push({ activity: name, args });
      if (!answer) throw ApplicationFailure.nonRetryable(`activity ${name} was not expected in this test`, 'UnexpectedActivity');
      return answer(...args);
    };
  }
  // Every name is a key of T, each bound to a function that records and answers.
  return fakes as unknown as T;
}

/** A promise the test settles by hand: a fake activity waits on it while the test acts on the run. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
