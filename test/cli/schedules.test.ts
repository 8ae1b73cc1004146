/** What `lifeboat schedules apply` asks Temporal for, from runbooks/lab.yaml (pure: no server). */
import path from 'node:path';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { desiredSchedules } from '../../cli/schedules';
import { loadConfig } from '../../config/load';
import { searchAttributes } from '../../contract/runbook';

const loaded = loadConfig(path.join(__dirname, '..', '..', 'runbooks', 'lab.yaml'));

describe('desired schedules from the lab config', () => {
  const schedules = desiredSchedules(loaded);

  it('a daily backup and a monthly restore test per database with backup:, and the quarterly evacuation drill', () => {
    expect(schedules.map((s) => s.scheduleId)).toEqual([
      'lifeboat:database-backup:orders', 'lifeboat:database-backup:users', 'lifeboat:database-backup:billing',
      'lifeboat:backup-restore-test:orders', 'lifeboat:backup-restore-test:users', 'lifeboat:backup-restore-test:billing',
      'lifeboat:regional-evacuation:east',
    ]);
  });

  it('the evacuation drill: quarterly, first Tuesday 04:00 UTC, planned, in drill mode, started as the scheduler with its clock at each run', () => {
    const drill = schedules.find((s) => s.scheduleId === 'lifeboat:regional-evacuation:east');
    if (!drill) throw new Error('no evacuation drill');
    expect(drill.options.spec).toEqual({ calendars: [{ hour: 4, minute: 0, month: ['JANUARY', 'APRIL', 'JULY', 'OCTOBER'], dayOfMonth: { start: 1, end: 7 }, dayOfWeek: 'TUESDAY' }], timezone: 'UTC' });
    expect(drill.options.policies).toEqual({ overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '60m', pauseOnFailure: true });
    const action = drill.options.action;
    expect(action.workflowType).toBe('regionalEvacuation');
    const [input] = action.args as [{ mode: string; run: { initiator: string; drill: boolean; scheduled?: boolean } }];
    expect(input).toMatchObject({ mode: 'planned', run: { initiator: 'scheduler', drill: true, scheduled: true } });
    const attributes = action.typedSearchAttributes as { get: (key: typeof searchAttributes.drill) => unknown };
    expect(attributes.get(searchAttributes.drill)).toBe(true);
    expect(action.memo).toEqual({ lifeboat: { runbook: 'regional-evacuation', targets: ['east', 'orders', 'users', 'billing'] } });
  });

  it('backups are not drills; restore tests are; the hash changes when the calendar does', () => {
    const backup = schedules.find((s) => s.scheduleId === 'lifeboat:database-backup:orders');
    const restore = schedules.find((s) => s.scheduleId === 'lifeboat:backup-restore-test:orders');
    expect(backup?.drill).toBe(false);
    expect(restore?.drill).toBe(true);
    const changed = desiredSchedules({ ...loaded, config: { ...loaded.config, schedules: { ...loaded.config.schedules!, backups: { calendar: { hour: 2, minute: 0 } } } } });
    expect(changed.find((s) => s.scheduleId === 'lifeboat:database-backup:orders')?.specHash).not.toBe(backup?.specHash);
    expect(changed.find((s) => s.scheduleId === 'lifeboat:backup-restore-test:orders')?.specHash).toBe(restore?.specHash);
  });
});
