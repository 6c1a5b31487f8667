import type { Migration } from '../../platform/db/migrate.ts';
import { inboxMigration } from '../../platform/events/event-consumer.ts';
import { eventLogMembers } from './members.ts';

export const eventLogMigrations: Migration[] = [
  {
    id: 'event-log/events-1',
    sql: `
      CREATE TABLE {schema}.events (
        seq bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        event_type text NOT NULL,
        user_id integer,
        timestamp_text text NOT NULL,
        occurred_at timestamptz NOT NULL,
        data json NOT NULL, -- json, not jsonb: the data keeps its fields in the published order
        project_id integer,
        defect_id integer,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX events_type ON {schema}.events (event_type, seq);
      CREATE INDEX events_project ON {schema}.events (project_id, seq);
      CREATE INDEX events_defect ON {schema}.events (defect_id, seq);
      CREATE INDEX events_user ON {schema}.events (user_id, seq);
      CREATE INDEX events_occurred ON {schema}.events (occurred_at);

      -- Which project a defect belongs to: only defect.created says so, later events inherit it.
      CREATE TABLE {schema}.defect_projects (
        defect_id integer PRIMARY KEY,
        project_id integer NOT NULL
      );

      -- Where each event stands at each consumer, from the consumers' own delivery reports.
      CREATE TABLE {schema}.deliveries (
        event_id text NOT NULL,
        consumer text NOT NULL,
        event_type text NOT NULL,
        status text NOT NULL,
        attempt integer NOT NULL,
        next_attempt_at timestamptz,
        last_error text,
        reason text,
        reported_at timestamptz NOT NULL,
        PRIMARY KEY (event_id, consumer)
      );
    `,
  },
  inboxMigration,
  {
    // Who may see which events (decision 010): the event log's own copy of project membership,
    // kept from the events it records, and the user a user.* event is about.
    id: 'event-log/members-2',
    sql: `
      ALTER TABLE {schema}.events ADD COLUMN subject_user_id integer;
      UPDATE {schema}.events SET subject_user_id = ${idField("data->>'user_id'")} WHERE event_type LIKE 'user.%';
      CREATE INDEX events_subject ON {schema}.events (subject_user_id, seq) WHERE subject_user_id IS NOT NULL;

      CREATE TABLE {schema}.project_members (
        project_id integer NOT NULL,
        user_id integer NOT NULL,
        PRIMARY KEY (project_id, user_id)
      );
      CREATE INDEX project_members_user ON {schema}.project_members (user_id, project_id);
      ${backfillMembersSql('{schema}')}
    `,
  },
  {
    // The shared membership copy (decision 008) replaces the event log's own: its table is
    // rebuilt in that copy's shape from the rows members-2 derived, with the timestamps and
    // tombstones the shared handlers compare new events against.
    id: 'event-log/shared-members-3',
    sql: `
      ALTER TABLE {schema}.project_members RENAME TO project_members_2;
      DROP INDEX {schema}.project_members_user;
      ${eventLogMembers.tablesSql}
      ${carryOverMembersSql('{schema}')}
      DROP TABLE {schema}.project_members_2;
    `,
  },
];

/** A JSON text field as an integer id, or NULL when it is not one (a bad event must not stop the migration). */
function idField(field: string): string {
  return `(CASE WHEN (${field}) ~ '^[0-9]{1,9}$' THEN (${field})::int END)`;
}

/**
 * Members from the events recorded before membership existed, as the projects service's own
 * migration makes them: owners (project.created) and explicit member events (the latest per
 * user and project wins), plus the reporters and current assignees of defects not deleted.
 * A deleted project has no members.
 */
function backfillMembersSql(schema: string): string {
  return `
      WITH
      ended_projects AS (SELECT project_id FROM ${schema}.events WHERE event_type = 'project.deleted' AND project_id IS NOT NULL),
      deleted_defects AS (SELECT defect_id FROM ${schema}.events WHERE event_type = 'defect.deleted' AND defect_id IS NOT NULL),
      membership_events AS (
        ${latestMemberEventsSql(schema)}
      ),
      reporters AS (
        SELECT defect_id, project_id, ${idField("data->>'reporter_id'")} AS member
        FROM ${schema}.events WHERE event_type = 'defect.created'
      ),
      last_assignments AS (
        SELECT DISTINCT ON (defect_id) defect_id, project_id, event_type, ${idField("data->>'assignee_id'")} AS member
        FROM ${schema}.events WHERE event_type IN ('defect.assigned', 'defect.unassigned') AND defect_id IS NOT NULL
        ORDER BY defect_id, seq DESC
      ),
      defect_people AS (
        SELECT defect_id, project_id, member FROM reporters
        UNION
        SELECT defect_id, project_id, member FROM last_assignments WHERE event_type = 'defect.assigned'
      ),
      candidates AS (
        SELECT project_id, member FROM membership_events WHERE event_type <> 'project.member_removed'
        UNION
        SELECT project_id, member FROM defect_people
        WHERE defect_id IS NULL OR defect_id NOT IN (SELECT defect_id FROM deleted_defects)
      )
      INSERT INTO ${schema}.project_members (project_id, user_id)
      SELECT DISTINCT c.project_id, c.member FROM candidates c
      WHERE c.project_id IS NOT NULL AND c.member IS NOT NULL
        AND c.project_id NOT IN (SELECT project_id FROM ended_projects)
        AND NOT EXISTS (
          SELECT 1 FROM membership_events m
          WHERE m.project_id = c.project_id AND m.member = c.member AND m.event_type = 'project.member_removed'
        );`;
}

/**
 * Moves the members derived by members-2 into the shared copy's table, as the shared handlers
 * would have left them: a deleted project's tombstone; for a user and project with member
 * events, the latest one's outcome and timestamp (a removal kept as a non-member row, so that an
 * older `member_added` recorded late does not bring the member back); other members (reporters,
 * assignees) from before membership existed at -infinity, as the other copies carry theirs over.
 */
function carryOverMembersSql(schema: string): string {
  return `
      INSERT INTO ${schema}.deleted_projects (project_id)
        SELECT DISTINCT project_id FROM ${schema}.events WHERE event_type = 'project.deleted' AND project_id IS NOT NULL;
      INSERT INTO ${schema}.project_members (project_id, user_id, is_member, as_of)
        SELECT project_id, user_id, true, '-infinity'::timestamp FROM ${schema}.project_members_2;
      WITH latest AS (
        ${latestMemberEventsSql(schema, ', timestamp_text')}
      )
      INSERT INTO ${schema}.project_members (project_id, user_id, is_member, as_of)
        SELECT project_id, member, event_type <> 'project.member_removed', timestamp_text::timestamp FROM latest
        WHERE project_id NOT IN (SELECT project_id FROM ${schema}.deleted_projects)
        ON CONFLICT (project_id, user_id) DO UPDATE SET as_of = excluded.as_of;`;
}

/** The latest member event per project and user (owners from project.created), by recording order. */
function latestMemberEventsSql(schema: string, columns = ''): string {
  return `SELECT DISTINCT ON (project_id, member) project_id, member, event_type${columns}
        FROM (
          SELECT seq, project_id, event_type${columns},
            CASE WHEN event_type = 'project.created' THEN ${idField("data->>'owner_id'")} ELSE ${idField("data->>'user_id'")} END AS member
          FROM ${schema}.events
          WHERE event_type IN ('project.created', 'project.member_added', 'project.member_removed')
        ) changes
        WHERE project_id IS NOT NULL AND member IS NOT NULL
        ORDER BY project_id, member, seq DESC`;
}
