import { Type } from '@sinclair/typebox';
import { StringEnum, Timestamp } from '../../platform/http/schema-types.ts';
import { ROLES } from '../../platform/auth/access-token.ts';

const NonBlank = (maxLength: number, extra: object = {}) =>
  Type.String({ minLength: 1, maxLength, pattern: '\\S', ...extra });

export const RoleSchema = StringEnum(ROLES);

export const UserSchema = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  email: Type.String(),
  full_name: Type.Union([Type.String(), Type.Null()]),
  role: RoleSchema,
  created_at: Timestamp,
  updated_at: Timestamp,
});

/** A user in a list or by id: all fields for admins and oneself, only id, username and full_name otherwise. */
export const VisibleUserSchema = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  full_name: Type.Union([Type.String(), Type.Null()]),
  email: Type.Optional(Type.String({ description: 'admins and oneself only' })),
  role: Type.Optional(RoleSchema),
  created_at: Type.Optional(Timestamp),
  updated_at: Type.Optional(Timestamp),
});

export const RegisterBody = Type.Object(
  {
    username: Type.String({ minLength: 3, maxLength: 50, pattern: '^[A-Za-z0-9_.-]+$' }),
    password: Type.String({ minLength: 6, maxLength: 128 }),
    email: Type.String({ format: 'email', maxLength: 254 }),
    full_name: Type.Optional(Type.Union([NonBlank(200), Type.Null()])),
  },
  { additionalProperties: false },
);

export const TokenBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 50 }),
  password: Type.String({ minLength: 1, maxLength: 128 }),
  // OAuth2 password-flow clients send these too; they are accepted and ignored.
  grant_type: Type.Optional(Type.String()),
  scope: Type.Optional(Type.String()),
  client_id: Type.Optional(Type.String()),
  client_secret: Type.Optional(Type.String()),
});

export const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'seconds' }),
});

export const RoleChangeBody = Type.Object({ role: RoleSchema }, { additionalProperties: false });

export const UserIdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2147483647 }) });
