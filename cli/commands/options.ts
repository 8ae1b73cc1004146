/** The options many commands share, made once so their flags and help read the same everywhere. */
import { Option } from 'commander';
import { ROLE_SETS, type Role } from '../../contract/runbook';

/** The program's `-c, --config <file>`. */
export const configOption = (): Option => new Option('-c, --config <file>', 'runbook config (default: runbooks/lab.yaml)');

/** `--as <user>`: who runs the command; the help names the roles it needs (`roles`, from ROLE_SETS). */
export function asOption(roles: readonly Role[]): Option {
  const needs = roles === ROLE_SETS.read ? 'any configured role may read' : `needs the ${roles.join(' or ')} role`;
  return new Option('--as <user>', `who you are (default: LIFEBOAT_USER); ${needs}`);
}

/** `--json`: the command's answer as JSON on stdout. */
export const jsonOption = (description = 'print JSON'): Option => new Option('--json', description);

/** `--reason <text>`, required: why, recorded by the run. */
export const reasonOption = (): Option => new Option('--reason <text>', 'why (recorded)').makeOptionMandatory();

/** `--key <file>`: sign the command (a decision, a start, a cancel, a resolution) with the person's Ed25519 private key. */
export const keyOption = (more = '', what = 'the decision'): Option => new Option('--key <file>', `sign ${what} with your Ed25519 private key (LIFEBOAT_APPROVAL_KEY)${more}`);

/** The signing key file: --key, or LIFEBOAT_APPROVAL_KEY. */
export const keyFileOf = (o: { key?: string }): string | undefined => o.key ?? process.env.LIFEBOAT_APPROVAL_KEY;
