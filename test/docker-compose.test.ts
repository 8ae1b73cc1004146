/**
 * docker-compose.temporal.yml cannot run here (no Docker engine), so it is kept
 * valid: it parses, its services are wired, its versions match the dev server
 * the lab builds, and it registers the search attributes the runbooks use.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../contract/runbook';
import { temporalBinary } from '../lab/temporal-server';

interface Compose {
  services: Record<string, { image: string; depends_on?: unknown; command?: string[]; ports?: string[] }>;
}

const compose = parse(readFileSync(path.join(__dirname, '..', 'docker-compose.temporal.yml'), 'utf8')) as Compose;

describe('docker-compose.temporal.yml', () => {
  it('has the server, its PostgreSQL, the UI and the search-attribute job', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['postgresql', 'register-search-attributes', 'temporal', 'temporal-ui']);
    expect(compose.services.temporal?.ports).toContain('7233:7233');
    expect(compose.services['temporal-ui']?.ports).toContain('8080:8080');
  });

  it('pins the same server and UI versions as the dev server the lab runs', () => {
    const version = execFileSync(temporalBinary(), ['--version']).toString();
    const [, server, ui] = /Server ([\d.]+), UI ([\d.]+)/.exec(version) ?? [];
    expect(server).toBeDefined();
    expect(compose.services.temporal?.image).toBe(`temporalio/auto-setup:${server}`);
    expect(compose.services['register-search-attributes']?.image).toBe(`temporalio/admin-tools:${server}`);
    expect(compose.services['temporal-ui']?.image).toBe(`temporalio/ui:${ui}`);
  });

  it('registers exactly the Lifeboat search attributes, with their types', () => {
    const command = compose.services['register-search-attributes']?.command?.join(' ') ?? '';
    const registered = Object.fromEntries([...command.matchAll(/--name (\w+) --type (\w+)/g)].map((m) => [m[1], m[2]]));
    expect(registered).toEqual(SEARCH_ATTRIBUTE_REGISTRATIONS);
  });
});
