import { Type } from '@sinclair/typebox';
import { StringEnum, Timestamp } from '../../platform/http/schema-types.ts';
import { ROLES } from '../../platform/auth/access-token.ts';
import { MIN_PASSWORD_LENGTH } from './password-policy.ts';

const NonBlank = (maxLength: number, extra: object = {}) =>
  Type.String({ minLength: 1, maxLength, pattern: '\\S', ...extra });

export const RoleSchema = StringEnum(ROLES);

export const UserSchema = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  email: Type.String(),
  full_name: Type.Union([Type.String(), Type.Null()]),
  role: RoleSchema,
  disabled: Type.Boolean({ description: 'a disabled user cannot sign in' }),
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
  disabled: Type.Optional(Type.Boolean({ description: 'admins and oneself only' })),
  created_at: Type.Optional(Timestamp),
  updated_at: Type.Optional(Timestamp),
});

/** At least 8 characters, and not one of the most common passwords (checked by password-policy.ts). */
const NewPassword = Type.String({
  minLength: MIN_PASSWORD_LENGTH,
  maxLength: 128,
  description: `at least ${MIN_PASSWORD_LENGTH} characters, not one of the 10,000 most common passwords`,
});

export const RegisterBody = Type.Object(
  {
    username: Type.String({ minLength: 3, maxLength: 50, pattern: '^[A-Za-z0-9_.-]+$' }),
    password: NewPassword,
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

export const UserChangeBody = Type.Object(
  {
    role: Type.Optional(RoleSchema),
    disabled: Type.Optional(
      Type.Boolean({ description: 'true ends every token of the user and refuses their sign-in' }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const PasswordChangeBody = Type.Object(
  {
    old_password: Type.String({ minLength: 1, maxLength: 128 }),
    new_password: NewPassword,
  },
  { additionalProperties: false },
);

export const UserIdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2147483647 }) });
