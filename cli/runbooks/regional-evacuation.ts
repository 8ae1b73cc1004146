/** The CLI side of regional-evacuation: `region=NAME mode=planned|unplanned` becomes an evacuation of that region's databases. */
import { regionalEvacuationRunbook } from '../../contract/regional-evacuation';
import { cliRunbook, initiatorLine, startEnvelope, stepBudgets } from './common';
import { regionalPreflight, regionalStart } from './regional';

export const regionalEvacuationCli = cliRunbook({
  definition: regionalEvacuationRunbook,
  plan(loaded, request) {
    const { config } = loaded;
    const { initiator, context, mode, runbook, region, other: survivingRegion, databases, names } = regionalStart(loaded, request, {
      runbook: regionalEvacuationRunbook.name,
      allowedParams: ['region', 'mode'],
      configured: config.runbooks['regional-evacuation'],
      meaning: 'the region to leave',
      otherwise: 'evacuate them with db-promotion one by one',
    });
    return {
      ...startEnvelope(regionalEvacuationRunbook, request, region),
      input: {
        region,
        survivingRegion,
        mode,
        run: context,
        databases: databases.map(({ name, promotion }) => ({ name, promotion })),
        policy: {
          rto: runbook.rto,
          stepBudgets: stepBudgets(runbook.steps),
          gates: runbook.gates,
          onPromotionFailure: runbook.onPromotionFailure,
          canary: runbook.canary,
          compensationAttempts: runbook.compensationAttempts,
          statusEverySeconds: config.notifications.statusEveryMinutes * 60,
        },
      },
      targets: [region, ...names],
      staticSummary: `${request.drill ? 'DRILL: ' : ''}evacuate ${region} to ${survivingRegion} (${mode}): ${names.join(', ')}`,
      staticDetails: [
        `**Runbook** regional-evacuation, **region** ${region} → **${survivingRegion}**, **mode** ${mode}`,
        `**Databases** ${names.join(', ')}`,
        initiatorLine(initiator, request),
        `**Detected** ${context.detectedAt}, **RTO budget** ${runbook.rto.budgetSeconds}s (${runbook.rto.onBreach} on breach)`,
      ].join('\n'),
    };
  },
  preflight: (readers, targets, mode) => regionalPreflight(readers, targets, mode, false),
  policy: (loaded) => loaded.config.runbooks['regional-evacuation'],
});
