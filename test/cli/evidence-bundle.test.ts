/** An evidence bundle read from disk is checked at the edge: malformed files are refused with what is wrong, sound ones verify untouched. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyBundle } from '../../cli/evidence';
import { GENESIS, sealRecord, type EvidenceRecord } from '../../contract/evidence';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bundle-'));
let n = 0;
const file = (content: unknown) => {
  const f = path.join(dir, `bundle-${++n}.json`);
  writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
};

function chainOf(details: string[]): EvidenceRecord[] {
  const chain: EvidenceRecord[] = [];
  for (const [i, detail] of details.entries()) {
    chain.push(sealRecord({ seq: i + 1, at: '2026-12-02T00:00:00.000Z', workflowId: 'w', runId: 'r', runbook: 'db-promotion', kind: 'started', detail }, chain.at(-1)?.hash ?? GENESIS));
  }
  return chain;
}

const bundle = (chain: unknown) => ({ format: 'lifeboat-evidence-bundle/1', workflowId: 'w', runId: 'r', exportedAt: 'now', storedAt: 'here', chain, history: {} });

describe('evidence bundles read from disk', () => {
  it('refuses a file that is not JSON, or not a bundle, with what it is', () => {
    expect(() => verifyBundle(file('not json'))).toThrow(/is not a Lifeboat evidence bundle: Unexpected token/);
    expect(() => verifyBundle(file({ format: 'something-else' }))).toThrow(/is not a Lifeboat evidence bundle \(format "something-else"\)/);
  });

  it('refuses a bundle whose records are malformed, naming the field', () => {
    const chain = chainOf(['a']) as unknown as Array<Record<string, unknown>>;
    const first = chain[0];
    if (!first) throw new Error('no record');
    first.hash = 'not-a-hash';
    expect(() => verifyBundle(file(bundle(chain)))).toThrow(/is not valid evidence: chain\.0\.hash: must be 64 lowercase hex digits/);
    expect(() => verifyBundle(file({ ...bundle(chainOf(['a'])), chain: 'nope' }))).toThrow(/chain: /);
  });

  it('refuses a record whose kind needs a field it lacks: a gate’s record names its gate, a step’s its step', () => {
    const gateless = { ...chainOf(['a'])[0], kind: 'gate-approved' };
    expect(() => verifyBundle(file(bundle([gateless])))).toThrow(/is not valid evidence: chain\.0\.gate: a gate-approved record names its gate/);
    const stepless = { ...chainOf(['a'])[0], kind: 'step-done' };
    expect(() => verifyBundle(file(bundle([stepless])))).toThrow(/chain\.0\.step: a step-done record names its step/);
  });

  it('a sound bundle verifies; a field the parser does not know is kept, so the chain still proves the bytes', () => {
    const chain = chainOf(['a', 'b']);
    expect(verifyBundle(file(bundle(chain)))).toMatchObject({ ok: true, records: 2 });
    // A record edited after sealing (even a field no schema names) breaks the chain where it was edited.
    const edited = chain.map((r, i) => (i === 1 ? { ...r, extra: 'added later' } : r));
    expect(verifyBundle(file(bundle(edited)))).toMatchObject({ ok: false, brokenAt: { position: 2 } });
  });
});
