/** The CLI side of failback: `region=NAME` becomes a return of that region's databases from where they were evacuated to. */
import { failbackRunbook } from '../../contract/failback';
import { cliRunbook, initiatorLine, startEnvelope, stepBudgets } from './common';
import { regionalPreflight, regionalStart } from './regional';

export const failbackCli = cliRunbook({
  definition: failbackRunbook,
  plan(loaded, request) {
    const { config } = loaded;
    const { initiator, context, runbook, region, other: from, databases, names } = regionalStart(loaded, request, {
      runbook: failbackRunbook.name,
      allowedParams: ['region'],
      configured: config.runbooks.failback,
      meaning: 'the region to return to',
      otherwise: 'fail them back one by one',
    });
    return {
      ...startEnvelope(failbackRunbook, request, region),
      input: {
        region,
        from,
        run: context,
        databases: databases.map(({ name, config: d, promotion }) => ({ name, home: { region: d.primary.region, host: d.primary.host, port: d.primary.port }, promotion })),
        policy: {
          rto: runbook.rto,
          stepBudgets: stepBudgets(runbook.steps),
          gates: { switchover: runbook.gates.switchover, 'discard-divergence': runbook.gates['discard-divergence'] ?? runbook.gates.switchover },
          canary: runbook.canary,
          reconciliation: runbook.reconciliation,
          catchUpMaxLagBytes: runbook.catchUpMaxLagBytes,
          catchUpTimeoutSeconds: runbook.catchUpTimeoutSeconds,
          compensationAttempts: runbook.compensationAttempts,
          statusEverySeconds: config.notifications.statusEveryMinutes * 60,
        },
      },
      targets: [region, ...names],
      staticSummary: `${request.drill ? 'DRILL: ' : ''}fail back ${names.join(', ')} from ${from} to ${region}`,
      staticDetails: [`**Runbook** failback, **from** ${from} → **${region}**`, `**Databases** ${names.join(', ')}`, initiatorLine(initiator, request)].join('\n'),
    };
  },
  // The failback promotes the original primaries, which run writable until they are rebuilt.
  preflight: (readers, targets, mode) => regionalPreflight(readers, targets, mode, true),
  policy: (loaded) => loaded.config.runbooks.failback,
});
