import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuthenticatedUser } from '../../../src/platform/auth/access-token.ts';
import { DomainError } from '../../../src/platform/errors/domain-error.ts';
import { assertMayChange, assertMayDelete, assertMayReport } from '../../../src/services/defects/defect-permissions.ts';
import { assertMayChangeProject, assertMayCreateProject } from '../../../src/services/projects/project-permissions.ts';

type Role = AuthenticatedUser['role'];
type Relation = 'reporter' | 'assignee' | 'project owner' | 'uninvolved';

const ROLES: Role[] = ['admin', 'manager', 'engineer', 'observer'];
const RELATIONS: Relation[] = ['reporter', 'assignee', 'project owner', 'uninvolved'];

const REPORTER_ID = 11;
const ASSIGNEE_ID = 12;
const OWNER_ID = 13;
const OUTSIDER_ID = 14;
const DEFECT = { id: 501, reporter_id: REPORTER_ID, assignee_id: ASSIGNEE_ID };
const PROJECT = { id: 77, owner_id: OWNER_ID };

const USER_ID: Record<Relation, number> = {
  reporter: REPORTER_ID,
  assignee: ASSIGNEE_ID,
  'project owner': OWNER_ID,
  uninvolved: OUTSIDER_ID,
};

const userFor = (role: Role, relation: Relation): AuthenticatedUser => ({
  id: USER_ID[relation],
  username: `${role}-${relation.replace(' ', '-')}`,
  role,
});

function assertForbidden(action: () => void, mention?: string): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof DomainError, String(error));
    assert.equal(error.code, 'FORBIDDEN');
    if (mention) assert.ok(error.message.includes(mention), `"${error.message}" does not mention ${mention}`);
    return true;
  });
}

function assertPermission(allowed: boolean, action: () => void, mention?: string): void {
  if (allowed) assert.doesNotThrow(action);
  else assertForbidden(action, mention);
}

const verdict = (allowed: boolean) => (allowed ? 'may' : 'may not');

describe('defect permissions', () => {
  // Managers, engineers and admins report; observers only read.
  const mayReport = (role: Role) => role !== 'observer';
  // The reporter, the assignee, the project's owner (none of them an observer) and admins change.
  const mayChange = (role: Role, relation: Relation) =>
    role === 'admin' || (relation !== 'uninvolved' && role !== 'observer');
  // The project's owner (not an observer: a demoted owner only reads) and admins delete.
  const mayDelete = (role: Role, relation: Relation) =>
    role === 'admin' || (relation === 'project owner' && role !== 'observer');

  for (const role of ROLES) {
    for (const relation of RELATIONS) {
      const user = userFor(role, relation);

      it(`${role} (${relation}) ${verdict(mayReport(role))} report a defect`, () => {
        assertPermission(mayReport(role), () => assertMayReport(user), 'Observers');
      });

      it(`${role} (${relation}) ${verdict(mayChange(role, relation))} change the defect`, () => {
        assertPermission(mayChange(role, relation), () => assertMayChange(user, DEFECT, OWNER_ID), String(DEFECT.id));
      });

      it(`${role} (${relation}) ${verdict(mayDelete(role, relation))} delete the defect`, () => {
        assertPermission(mayDelete(role, relation), () => assertMayDelete(user, DEFECT, OWNER_ID), String(DEFECT.id));
      });
    }
  }

  describe('when the project is unknown (no owner id)', () => {
    for (const role of ROLES) {
      for (const relation of ['reporter', 'assignee', 'uninvolved'] as const) {
        const user = userFor(role, relation);
        it(`${role} (${relation}) ${verdict(mayChange(role, relation))} change, ${verdict(role === 'admin')} delete`, () => {
          assertPermission(mayChange(role, relation), () => assertMayChange(user, DEFECT, undefined));
          assertPermission(role === 'admin', () => assertMayDelete(user, DEFECT, undefined));
        });
      }
    }
  });

  describe('when the defect has no assignee', () => {
    const unassigned = { ...DEFECT, assignee_id: null };
    for (const role of ROLES) {
      it(`${role} (uninvolved) ${verdict(role === 'admin')} change an unassigned defect`, () => {
        assertPermission(role === 'admin', () => assertMayChange(userFor(role, 'uninvolved'), unassigned, OWNER_ID));
      });
      it(`${role} (reporter) ${verdict(mayChange(role, 'reporter'))} change an unassigned defect`, () => {
        assertPermission(mayChange(role, 'reporter'), () =>
          assertMayChange(userFor(role, 'reporter'), unassigned, OWNER_ID),
        );
      });
    }
  });
});

describe('project permissions', () => {
  // Everyone but observers starts projects; only the owner or an admin changes or deletes one.
  const mayCreate = (role: Role) => role !== 'observer';
  // A demoted owner who is now an observer only reads.
  const mayChangeProject = (role: Role, relation: Relation) =>
    role === 'admin' || (relation === 'project owner' && role !== 'observer');

  for (const role of ROLES) {
    for (const relation of RELATIONS) {
      const user = userFor(role, relation);

      it(`${role} (${relation}) ${verdict(mayCreate(role))} create a project`, () => {
        assertPermission(mayCreate(role), () => assertMayCreateProject(user), 'Observers');
      });

      it(`${role} (${relation}) ${verdict(mayChangeProject(role, relation))} change or delete the project`, () => {
        assertPermission(
          mayChangeProject(role, relation),
          () => assertMayChangeProject(user, PROJECT),
          String(PROJECT.id),
        );
      });
    }
  }
});
