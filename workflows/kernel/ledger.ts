/**
 * The run's ledger, the floor every other room writes to: the status (state,
 * phase, steps, gates, RTO, RPO, children, artifacts), its events, the search
 * attributes and the UI's current details. Each record is handed to the run's
 * witness (the evidence chain) as it is written; the ledger imports no room.
 */
import { log, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { EvidenceHead, EvidenceRecord, GateEvidenceKind, OmitEach, StepEvidenceKind } from '../../contract/evidence';
import { lookup } from '../../contract/records';
import { describeReplication, judgeRpo, type RpoVerdict } from '../../contract/rpo';
import {
  hasRole,
  isFinalState,
  ROLE_SETS,
  searchAttributes,
  type ChildStatus,
  type DatabaseRpoStatus,
  type GateStatus,
  type RpoStatus,
  type RunArtifact,
  type RunbookStatus,
  type RunEvent,
  type RunEventKind,
  type RunState,
  type StepStatus,
} from '../../contract/runbook';
import { definitionError } from './failures';
import type { RunbookRunOptions } from './plan';
import { renderStatusMarkdown } from './status-markdown';

/** What a record of the run says, as the ledger hands it to its witness. */
export type WitnessFields = OmitEach<EvidenceRecord, 'format' | 'seq' | 'at' | 'workflowId' | 'runId' | 'runbook' | 'prev' | 'hash'>;

/** Who keeps what the ledger records beyond the run's own memory: the evidence chain. */
export interface Witness {
  /** Seals a record; the chain's new head, or undefined when nothing was sealed. */
  witness(fields: WitnessFields): EvidenceHead | undefined;
  /** Ends the chain: what is recorded later is in the history only. */
  seal(): void;
}

export type EventExtra = Partial<Pick<RunEvent, 'by' | 'gate' | 'step'>>;

/** What an event of kind `K` must say besides its detail: a gate's names its gate, a step's its step. */
type ExtraFor<K extends RunEventKind> = K extends GateEvidenceKind ? [EventExtra & { gate: string }] : K extends StepEvidenceKind ? [EventExtra & { step: string }] : [EventExtra?];

export class RunLedger {
  readonly status: RunbookStatus;
  private lastPublishedPhase: string | undefined;

  private current: RunbookRunOptions;

  /** `options.context` is the run's own (a scheduled run's clock already set to its start). */
  constructor(
    options: RunbookRunOptions,
    private readonly witnessedBy: Witness,
  ) {
    this.current = options;
    const { plan, context } = options;
    const budget = options.rto.budgetSeconds;
    this.status = {
      workflowId: workflowInfo().workflowId,
      runbook: options.runbook,
      phase: 'starting',
      state: 'running',
      initiator: context.initiator,
      incident: context.incident,
      detectedAt: context.detectedAt,
      drill: context.drill,
      target: options.target,
      steps: plan.steps.map((s) => ({
        id: s.id,
        title: s.title,
        state: 'pending',
        irreversible: s.irreversible === true,
        budgetSeconds: lookup(options.stepBudgets, s.id),
        budgetBreached: false,
        pastPointOfNoReturn: false,
      })),
      gates: plan.gates.map((g) => ({
        id: g.id,
        title: g.title,
        state: 'pending',
        approvers: approversOf(context),
        required: lookup(options.gates, g.id)?.twoPerson ? 2 : 1,
        approvals: [],
      })),
      rto: { budgetSeconds: budget, elapsedSeconds: 0, remainingSeconds: budget, breached: false, onBreach: options.rto.onBreach },
      rpo: { targetSeconds: options.rpoTargetSeconds },
      pointOfNoReturnPassed: false,
      rollbackAvailable: true,
      events: [],
      children: [],
      notifications: { delivered: 0, pending: 0, failedRounds: 0 },
    };
  }

  get runbook(): string {
    return this.options.runbook;
  }

  /** The run's options: as given, until the run is admitted under the worker's policy (adopt). */
  get options(): RunbookRunOptions {
    return this.current;
  }

  get context(): RunbookRunOptions['context'] {
    return this.current.context;
  }

  /** The worker's policy the run was admitted under (contract/governance.ts): who decides, and each gate's rules. */
  adopt(context: RunbookRunOptions['context'], gates: RunbookRunOptions['gates']): void {
    this.current = { ...this.current, context, gates };
    for (const gate of this.status.gates) {
      gate.approvers = approversOf(context);
      gate.required = lookup(gates, gate.id)?.twoPerson ? 2 : 1;
    }
  }

  /** An event in the status and the log; every one but the end is witnessed as it is (finish() witnesses the end with its outcome). */
  record<K extends RunEventKind>(kind: K, detail: string, ...[given]: ExtraFor<K>): void {
    const extra: EventExtra = given ?? {};
    this.status.events.push({ at: this.now(), kind, detail, ...extra });
    log.info(detail, { kind, ...extra });
    // ExtraFor<K> gave a gate's kind its gate and a step's its step: the record is the union member of its kind.
    if (kind !== 'finished') this.witness({ kind, detail, ...extra } as WitnessFields);
  }

  /** Hands a record to the witness; a decision is bound to the opening of its gate by the gate's nonce. */
  witness(fields: WitnessFields): void {
    const nonce = fields.gate ? this.status.gates.find((g) => g.id === fields.gate)?.nonce : undefined;
    const head = this.witnessedBy.witness({ ...fields, ...(nonce ? { nonce } : {}) });
    if (head) this.status.evidence = head;
  }

  /** The run ends: the RTO clock stops, the end is witnessed with its outcome, and the chain is sealed. */
  finish(state: RunState, phase: string, extra: { result?: object } = {}): void {
    this.status.rto = this.snapshot().rto; // freeze the clock at the end
    this.status.state = state;
    this.setPhase(phase);
    this.record('finished', `run ${state}`);
    const { rto, rpo, error } = this.status;
    const measured = (extra.result as { rto?: unknown; rpo?: unknown } | undefined) ?? {};
    this.witness({ kind: 'finished', detail: `run ${state}`, outcome: { state, rto: measured.rto ?? rto, rpo: measured.rpo ?? rpo, ...(error ? { error } : {}) } });
    // The chain ends here: its head goes into the result; a late signal is in the history, not in the chain.
    this.witnessedBy.seal();
  }

  /** A copy with the RTO clock as of now (workflow time); read-only, so the query handler may call it. */
  snapshot(): RunbookStatus {
    const copy = JSON.parse(JSON.stringify(this.status)) as RunbookStatus;
    if (!isFinalState(copy.state)) {
      copy.rto.elapsedSeconds = Math.max(0, (Date.now() - Date.parse(copy.detectedAt)) / 1000);
      copy.rto.remainingSeconds = copy.rto.budgetSeconds - copy.rto.elapsedSeconds;
    }
    return copy;
  }

  setPhase(phase: string): void {
    this.status.phase = phase;
  }

  /** Mirrors the status in the Temporal UI and keeps the phase search attribute current. */
  publish(): void {
    setCurrentDetails(renderStatusMarkdown(this.snapshot()));
    if (this.status.phase !== this.lastPublishedPhase) {
      this.lastPublishedPhase = this.status.phase;
      upsertSearchAttributes([{ key: searchAttributes.phase, value: this.status.phase }]);
    }
  }

  upsertStartAttributes(): void {
    const pairs: SearchAttributeUpdatePair[] = [
      { key: searchAttributes.runbook, value: this.options.runbook },
      { key: searchAttributes.drill, value: this.options.context.drill },
      { key: searchAttributes.rtoBreached, value: false },
    ];
    if (this.options.context.incident) pairs.push({ key: searchAttributes.incident, value: this.options.context.incident });
    upsertSearchAttributes(pairs);
  }

  /** The RTO budget is spent: in the status and in the `LifeboatRtoBreached` search attribute. */
  rtoBreached(): RunbookStatus['rto'] {
    const rto = this.status.rto;
    rto.breached = true;
    rto.breachedAt = this.now();
    upsertSearchAttributes([{ key: searchAttributes.rtoBreached, value: true }]);
    return rto;
  }

  /**
   * Records the run's RPO and judges it by the rule of contract/rpo.ts against the run's
   * target (unknown is not met). A parent that aggregates its children passes their verdict.
   */
  recordRpo(rpo: Omit<RpoStatus, 'targetSeconds' | 'met' | 'verdict'>, verdict?: RpoVerdict): RpoStatus & { met: boolean; verdict: string } {
    const target = this.options.rpoTargetSeconds;
    const { met, reason } = verdict ?? judgeRpo(target, rpo);
    const recorded = { targetSeconds: target, ...rpo, met, verdict: reason };
    this.status.rpo = recorded;
    this.publish();
    return recorded;
  }

  /**
   * Records each database's replication as read before a point-of-no-return gate (status and
   * event), and returns the summary for the gate-opened event, so the approver decides with it.
   */
  recordReplication(rows: DatabaseRpoStatus[], note: string): string {
    this.status.replication = rows;
    const summary = `RPO per database before promotion (${note}): ${rows.map((r) => `${describeReplication(r)}: ${r.verdict}`).join('; ')}`;
    this.record('replication-measured', summary);
    this.publish();
    return summary;
  }

  /**
   * Records a document the run stored with its evidence (via an activity): in
   * the status, and in the evidence chain with its digest, so the stored copy
   * can be checked against the sealed chain.
   */
  attach(artifact: Omit<RunArtifact, 'at'>): void {
    const entry: RunArtifact = { ...artifact, at: this.now() };
    (this.status.artifacts ??= []).push(entry);
    const detail = `${artifact.kind} ${artifact.name} stored (sha256 ${artifact.digest}): ${artifact.title}`;
    this.status.events.push({ at: entry.at, kind: 'artifact', detail, ...(artifact.step ? { step: artifact.step } : {}) });
    log.info(detail, { kind: 'artifact', step: artifact.step });
    this.witness({ kind: 'artifact', detail, ...(artifact.step ? { step: artifact.step } : {}), outcome: { name: artifact.name, kind: artifact.kind, digest: artifact.digest, locations: artifact.locations, summary: artifact.summary } });
    this.publish();
  }

  /** Records a child run (e.g. a database promotion of an evacuation) in the status. */
  trackChild(child: ChildStatus): void {
    const existing = this.status.children.findIndex((c) => c.workflowId === child.workflowId);
    if (existing >= 0) this.status.children[existing] = child;
    else this.status.children.push(child);
    this.publish();
  }

  stepStatus(id: string): StepStatus {
    const step = this.status.steps.find((s) => s.id === id);
    if (!step) throw definitionError(`unknown step '${id}' (not in the runbook plan)`);
    return step;
  }

  gateStatus(id: string): GateStatus {
    const gate = this.status.gates.find((g) => g.id === id);
    if (!gate) throw definitionError(`unknown gate '${id}' (not in the runbook plan)`);
    return gate;
  }

  now(): string {
    return new Date().toISOString();
  }
}

/** Who may decide the run's gates: every approver but the initiator. */
function approversOf(context: RunbookRunOptions['context']): string[] {
  // Read before admission too, from an input nobody has checked yet: a malformed one gives nobody, never a crash.
  const people: unknown = context.people;
  if (typeof people !== 'object' || people === null) return [];
  return Object.entries(people as Record<string, unknown>)
    .filter(([name, roles]) => Array.isArray(roles) && hasRole(roles, ROLE_SETS.decide) && name !== context.initiator)
    .map(([name]) => name);
}
