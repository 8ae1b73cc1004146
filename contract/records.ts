/**
 * Own-property lookup in a name-keyed record. Names come from people and
 * configs; a plain `record[name]` would find `constructor` or `__proto__` on
 * every object and turn a refusal into a crash (inside a workflow: a failed task).
 */
export function lookup<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
