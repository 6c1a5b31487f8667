import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isDeclaredError } from '../../../src/platform/errors/domain-error.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Every error the code declares: the shared ones and each service's `errors.ts`. */
async function declaredErrors(): Promise<Map<string, number>> {
  const services = await fs.readdir(path.join(ROOT, 'src/services'), { withFileTypes: true });
  const modules = [
    'src/platform/errors/common-errors.ts',
    ...services.filter((entry) => entry.isDirectory()).map((entry) => `src/services/${entry.name}/errors.ts`),
  ];
  const declared = new Map<string, number>();
  for (const modulePath of modules) {
    const exists = await fs.stat(path.join(ROOT, modulePath)).then(
      () => true,
      () => false,
    );
    if (!exists) continue;
    const exported = (await import(path.join(ROOT, modulePath))) as Record<string, unknown>;
    for (const value of Object.values(exported)) {
      if (!isDeclaredError(value)) continue;
      assert.ok(
        !declared.has(value.code) || declared.get(value.code) === value.statusCode,
        `${value.code} declared twice with different statuses`,
      );
      declared.set(value.code, value.statusCode);
    }
  }
  return declared;
}

/** The error table of docs/api.md: status → the codes its row names (Fastify's own FST_ codes left out). */
async function documentedErrors(): Promise<Map<string, number>> {
  const api = await fs.readFile(path.join(ROOT, 'docs/api.md'), 'utf8');
  const start = api.indexOf('\n## Errors\n');
  assert.ok(start >= 0, 'docs/api.md has no "## Errors" section');
  const section = api.slice(start);
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| status | codes |')));
  const documented = new Map<string, number>();
  for (const row of table.split('\n').filter((line) => /^\| \d{3} \|/.test(line))) {
    const status = Number(row.slice(2, 5));
    for (const [, code] of row.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) {
      if (!code.startsWith('FST_')) documented.set(code, status);
    }
  }
  return documented;
}

describe('error catalogue', () => {
  it('every declared error code is in the error table of docs/api.md with its status, and the table names no other code', async () => {
    const declared = await declaredErrors();
    const documented = await documentedErrors();
    assert.ok(declared.size >= 15, `only ${declared.size} declared errors found: is a service's errors.ts missing?`);
    assert.deepEqual(Object.fromEntries([...documented].sort()), Object.fromEntries([...declared].sort()));
  });

  it('a declared error carries its code, status, message and extra fields', async () => {
    const { badTransition } = await import('../../../src/services/defects/errors.ts');
    const error = badTransition('Новая', 'Закрыта', ['В работе', 'Отменена']);
    assert.equal(error.code, 'DEFECT_BAD_TRANSITION');
    assert.equal(error.statusCode, 409);
    assert.match(error.message, /«Новая».*«Закрыта»/);
    assert.deepEqual(error.extra.allowed_next, ['В работе', 'Отменена']);
  });
});
