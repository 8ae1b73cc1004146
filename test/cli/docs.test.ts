/** The plan tables in runbooks/*.md are what the code and runbooks/lab.yaml generate: docs cannot drift. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOCUMENTED_RUNBOOKS, renderRunbookSection, syncRunbookDocs } from '../../cli/docs';
import { loadConfig } from '../../config/load';

const RUNBOOKS = path.join(__dirname, '..', '..', 'runbooks');
const loaded = loadConfig(path.join(RUNBOOKS, 'lab.yaml'));

describe('runbook docs', () => {
  it('the committed docs match what the workflow plans and the lab config generate (run `npm run docs` if not)', () => {
    expect(syncRunbookDocs(loaded, RUNBOOKS, false)).toEqual([]);
  });

  it('a change of policy changes the generated section', () => {
    const entry = DOCUMENTED_RUNBOOKS.find((r) => r.runbook === 'db-promotion');
    if (!entry) throw new Error('db-promotion is not documented');
    const policy = entry.policy(loaded);
    if (!policy) throw new Error('db-promotion has no policy in lab.yaml');
    const before = renderRunbookSection(loaded, entry.plan, policy);
    const after = renderRunbookSection(loaded, entry.plan, { ...policy, gates: { promote: { escalateAfterSeconds: 1, timeoutSeconds: 2, twoPerson: true } } });
    expect(after).not.toEqual(before);
    expect(after).toContain('| gate | `promote`: Approve promotion (point of no return) | | | escalates after 1s, rejected after 2s, two approvers |');
    expect(before).toContain('| 4 | `promote`: Promote the standby (pg_promote) | **point of no return** |');
  });
});
