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
  { ...PageQuery, owner_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647 })) },
  { additionalProperties: false },
);

const UserId = Type.Integer({ minimum: 1, maximum: 2147483647 });

export const MemberSchema = Type.Object({
  project_id: Type.Integer(),
  user_id: Type.Integer(),
  username: Type.Union([Type.String(), Type.Null()], { description: 'null until the user is known here' }),
  full_name: Type.Union([Type.String(), Type.Null()]),
  is_owner: Type.Boolean(),
  added_by: Type.Union([Type.Integer(), Type.Null()], { description: 'null for the owner and carried-over members' }),
  added_at: Timestamp,
});

export const AddMemberBody = Type.Object({ user_id: UserId }, { additionalProperties: false });

export const MemberParams = Type.Object({ id: ProjectIdParams.properties.id, user_id: UserId });

export const MemberListQuery = Type.Object(PageQuery, { additionalProperties: false });
