import { Type, type Static, type TObject } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ROLES } from '../platform/auth/access-token.ts';
import type { EventEnvelope } from '../platform/events/envelope.ts';
import { PRIORITIES, STATUSES } from './defect-values.ts';

/**
 * The event contract: every event type the system publishes, with the shape of its `data`.
 * Producers (`events.add`) and consumers' handlers are typed from it, the outbox checks
 * `data` against it before storing an event, consumers check it before handling one, and
 * `npm run asyncapi` writes docs/asyncapi.yaml from it. The seed's seven types have exactly
 * the seed's fields.
 */

const Id = Type.Integer({ minimum: 1 });
const Status = Type.Union(STATUSES.map((status) => Type.Literal(status)));
const Priority = Type.Union(PRIORITIES.map((priority) => Type.Literal(priority)));
const Role = Type.Union(ROLES.map((role) => Type.Literal(role)));
/** A user's token generation: tokens carry the one they were issued with (claim `gen`). */
const Generation = Type.Integer({ minimum: 0 });

interface EventDefinition<Data extends TObject> {
  data: Data;
  /** The service that publishes it. */
  publishedBy: 'auth' | 'projects' | 'defects';
  /** When it is published, as the docs say it. */
  when: string;
  /** One of the seed's seven types, kept exactly. */
  seed: boolean;
}

const event = <Data extends TObject>(
  definition: Omit<EventDefinition<Data>, 'data'>,
  data: Data,
): EventDefinition<Data> => ({
  ...definition,
  data,
});

export const EVENTS = {
  'project.created': event(
    { publishedBy: 'projects', when: 'a project is created', seed: true },
    Type.Object({ project_id: Id, name: Type.String(), owner_id: Id }),
  ),
  'project.updated': event(
    { publishedBy: 'projects', when: 'PUT/PATCH changed the name or description', seed: true },
    Type.Object({ project_id: Id, name: Type.String(), updated_by: Id }),
  ),
  'project.deleted': event(
    { publishedBy: 'projects', when: 'a project is deleted', seed: true },
    Type.Object({ project_id: Id, deleted_by: Id }),
  ),
  'project.member_added': event(
    {
      publishedBy: 'projects',
      when: 'a user became a member of a project (the owner, with its `project.created`, is a member without this event)',
      seed: false,
    },
    Type.Object({ project_id: Id, user_id: Id, added_by: Id }),
  ),
  'project.member_removed': event(
    { publishedBy: 'projects', when: 'a member was removed from a project (never its owner)', seed: false },
    Type.Object({ project_id: Id, user_id: Id, removed_by: Id }),
  ),
  'defect.created': event(
    { publishedBy: 'defects', when: 'a defect is created', seed: true },
    Type.Object({
      defect_id: Id,
      title: Type.String(),
      status: Status,
      priority: Priority,
      project_id: Id,
      reporter_id: Id,
    }),
  ),
  'defect.updated': event(
    { publishedBy: 'defects', when: 'PUT/PATCH changed any field', seed: true },
    Type.Object({ defect_id: Id, title: Type.String(), updated_by: Id }),
  ),
  'defect.status_changed': event(
    { publishedBy: 'defects', when: 'PUT/PATCH changed the status', seed: true },
    Type.Object({ defect_id: Id, old_status: Status, new_status: Status, changed_by: Id }),
  ),
  'defect.deleted': event(
    { publishedBy: 'defects', when: 'a defect is deleted, by request or because its project was deleted', seed: true },
    Type.Object({ defect_id: Id, deleted_by: Id }),
  ),
  'user.registered': event(
    {
      publishedBy: 'auth',
      when: 'a user is created (registration, `DEMO_USER`, `ADMIN_USER`); envelope `user_id` = the new user',
      seed: false,
    },
    Type.Object({
      user_id: Id,
      username: Type.String(),
      email: Type.String(),
      full_name: Type.Union([Type.String(), Type.Null()]),
      role: Role,
    }),
  ),
  'user.role_changed': event(
    {
      publishedBy: 'auth',
      when: "an admin changed a user's role; the user's tokens with a generation below `token_generation` are void",
      seed: false,
    },
    Type.Object({ user_id: Id, old_role: Role, new_role: Role, changed_by: Id, token_generation: Generation }),
  ),
  'user.disabled': event(
    {
      publishedBy: 'auth',
      when: 'an admin disabled a user: no sign-in, and every token below `token_generation` is void',
      seed: false,
    },
    Type.Object({ user_id: Id, disabled_by: Id, token_generation: Generation }),
  ),
  'user.enabled': event(
    { publishedBy: 'auth', when: 'an admin enabled a disabled user again', seed: false },
    Type.Object({ user_id: Id, enabled_by: Id }),
  ),
  'user.password_changed': event(
    {
      publishedBy: 'auth',
      when: "a user changed their password; the user's tokens with a generation below `token_generation` are void",
      seed: false,
    },
    Type.Object({ user_id: Id, token_generation: Generation }),
  ),
  'defect.assigned': event(
    {
      publishedBy: 'defects',
      when: 'a defect got an assignee: after `defect.created` when created with one, after `defect.updated` when the assignee changed to another user',
      seed: false,
    },
    Type.Object({ defect_id: Id, assignee_id: Id, assigned_by: Id }),
  ),
  'defect.unassigned': event(
    { publishedBy: 'defects', when: 'PUT/PATCH cleared the assignee (after `defect.updated`)', seed: false },
    Type.Object({ defect_id: Id, previous_assignee_id: Id, unassigned_by: Id }),
  ),
} as const;

export type EventType = keyof typeof EVENTS;
export type EventData<Type extends EventType> = Static<(typeof EVENTS)[Type]['data']>;
/** An envelope whose `data` is the contract's for its type. */
export type ContractEvent<Type extends EventType> = EventEnvelope<EventData<Type>> & { event_type: Type };

export const EVENT_TYPES = Object.keys(EVENTS) as EventType[];

export function isContractEventType(eventType: string): eventType is EventType {
  return Object.hasOwn(EVENTS, eventType);
}

/**
 * Publishing is strict (exactly the declared fields: a misspelt or extra field is a
 * programming error); consuming accepts fields it does not know, so that a producer can
 * add a field before every consumer is upgraded.
 */
const checkers = new Map<string, { publish: TypeCheck<TObject>; consume: TypeCheck<TObject> }>(
  EVENT_TYPES.map((eventType) => {
    const schema: TObject = EVENTS[eventType].data;
    const strict = Type.Object(schema.properties, { additionalProperties: false });
    return [eventType, { publish: TypeCompiler.Compile(strict), consume: TypeCompiler.Compile(schema) }];
  }),
);

/** An event a producer tried to publish that the contract does not allow: a programming error. */
export class EventContractViolation extends Error {
  override name = 'EventContractViolation';
}

/**
 * What is wrong with an event's `data` (naming the field), or undefined when it matches the
 * contract. A type the contract does not know is not checked: it is someone else's event.
 */
export function contractViolation(
  eventType: string,
  data: unknown,
  direction: 'publish' | 'consume',
): string | undefined {
  const checker = checkers.get(eventType)?.[direction];
  if (!checker) return undefined;
  if (checker.Check(data)) return undefined;
  const problems = [...checker.Errors(data)].map(
    (error) => `${error.path ? `data${error.path.replaceAll('/', '.')}` : 'data'} ${error.message}`,
  );
  return `${eventType}: ${[...new Set(problems)].join('; ') || 'data does not match the contract'}`;
}
