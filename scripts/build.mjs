// Compiles the TypeScript to dist/ and pre-builds the workflow bundle that
// production workers load (dist/workflow-bundle.js), so a worker does not run
// webpack at start-up.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });

const { bundleWorkflowCode } = require('@temporalio/worker');
const { code } = await bundleWorkflowCode({
  workflowsPath: path.join(root, 'workflows', 'index.ts'),
  // The workflows' own failures encode their message and stack trace as a payload (lib/codec.ts getDataConverter).
  failureConverterPath: path.join(root, 'lib', 'failure-converter.mts'),
  logger: { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error },
});
mkdirSync(path.join(root, 'dist'), { recursive: true });
writeFileSync(path.join(root, 'dist', 'workflow-bundle.js'), code);
writeFileSync(path.join(root, 'dist', '.build-stamp'), new Date().toISOString());
console.error(`built dist/ and dist/workflow-bundle.js (${(code.length / 1024).toFixed(0)} KiB)`);
