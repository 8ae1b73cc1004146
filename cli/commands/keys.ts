/** `lifeboat keys generate`: an approver's Ed25519 key pair for signed gate decisions. */
import type { Command } from 'commander';
import { generateApprovalKey } from '../../lib/approval-keys';
import { examples } from '../help';

export function register(program: Command): void {
  const keys = examples(program.command('keys').description("approvers' Ed25519 keys for signed gate decisions"), ['lifeboat keys generate --out ~/.lifeboat/bob.pem']);
  examples(
    keys
      .command('generate')
      .description('write a new private key to a file (keep it on your machine) and print the public key for people.<you>.publicKey')
      .requiredOption('--out <file>', 'where to write the private key (PEM, mode 0600; never overwritten)'),
    ['lifeboat keys generate --out ~/.lifeboat/bob.pem'],
  ).action((o: { out: string }) => {
    const publicKey = generateApprovalKey(o.out);
    console.log(`private key written to ${o.out} (mode 0600): keep it secret; approve with --key ${o.out}`);
    console.log(`add to your entry under people: in the config:\n  publicKey: ${publicKey}`);
  });
}
