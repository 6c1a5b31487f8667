import { Type } from '@sinclair/typebox';
import { PageQuery, Timestamp } from '../../platform/http/schema-types.ts';

export const NAME_MAX = 200;
export const DESCRIPTION_MAX = 10_000;

const Name = Type.String({ minLength: 1, maxLength: NAME_MAX, pattern: '\\S', description: 'not blank' });
const Description = Type.Union([Type.String({ maxLength: DESCRIPTION_MAX }), Type.Null()]);

export const ProjectSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  owner_id: Type.Integer(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const CreateProjectBody = Type.Object(
  { name: Name, description: Type.Optional(Description) },
  { additionalProperties: false },
);

/** PUT requires the name; an omitted description keeps its value (as a defect's PUT does). */
export const ReplaceProjectBody = CreateProjectBody;

export const PatchProjectBody = Type.Object(
  { name: Type.Optional(Name), description: Type.Optional(Description) },
  { additionalProperties: false, minProperties: 1 },
);

export const ProjectIdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2147483647 }) });

export const ProjectListQuery = Type.Object(
  { ...PageQuery, owner_id: Type.Optional(Type.Integer({ minimum: 1 })) },
  { additionalProperties: false },
);
