import { Type } from '@sinclair/typebox';
import { PageQuery, StringEnum, Timestamp } from '../../platform/http/schema-types.ts';
import { PRIORITIES, STATUSES } from './defect-workflow.ts';

export const TITLE_MAX = 200;
export const DESCRIPTION_MAX = 10_000;

const Status = StringEnum(STATUSES);
const Priority = StringEnum(PRIORITIES);
const Title = Type.String({ minLength: 1, maxLength: TITLE_MAX, pattern: '\\S', description: 'not blank' });
const Description = Type.Union([Type.String({ maxLength: DESCRIPTION_MAX }), Type.Null()]);
const Id = Type.Integer({ minimum: 1, maximum: 2147483647 });
const Assignee = Type.Union([Id, Type.Null()], { description: 'user id' });
const DueDate = Type.Union([Type.String({ format: 'date' }), Type.Null()], { description: 'YYYY-MM-DD' });

export const DefectSchema = Type.Object({
  id: Type.Integer(),
  project_id: Type.Integer(),
  title: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  status: Status,
  priority: Priority,
  reporter_id: Type.Integer(),
  assignee_id: Type.Union([Type.Integer(), Type.Null()]),
  due_date: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const CreateDefectBody = Type.Object(
  {
    project_id: Id,
    title: Title,
    description: Type.Optional(Description),
    status: Type.Optional(Status),
    priority: Type.Optional(Priority),
    assignee_id: Type.Optional(Assignee),
    due_date: Type.Optional(DueDate),
  },
  { additionalProperties: false },
);

/** The seed's PUT body: title, description, status, priority (assignment fields optional). */
export const ReplaceDefectBody = Type.Object(
  {
    title: Title,
    description: Type.Optional(Description),
    status: Status,
    priority: Priority,
    assignee_id: Type.Optional(Assignee),
    due_date: Type.Optional(DueDate),
  },
  { additionalProperties: false },
);

export const PatchDefectBody = Type.Object(
  {
    title: Type.Optional(Title),
    description: Type.Optional(Description),
    status: Type.Optional(Status),
    priority: Type.Optional(Priority),
    assignee_id: Type.Optional(Assignee),
    due_date: Type.Optional(DueDate),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const DefectIdParams = Type.Object({ id: Id });

export const DefectListQuery = Type.Object(
  {
    ...PageQuery,
    project_id: Type.Optional(Id),
    status: Type.Optional(Status),
    priority: Type.Optional(Priority),
    assignee_id: Type.Optional(Id),
  },
  { additionalProperties: false },
);
