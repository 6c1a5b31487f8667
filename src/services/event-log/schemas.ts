import { Type } from '@sinclair/typebox';
import { PageQuery, StringEnum, Timestamp } from '../../platform/http/schema-types.ts';

const Id = Type.Integer({ minimum: 1, maximum: 2147483647 });

export const EventFilterQuery = {
  event_type: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 100,
      pattern: '^([a-z_]+|\\*|#)(\\.([a-z_]+|\\*|#))*$',
      description: 'an event type or a topic pattern: defect.*, #.deleted',
    }),
  ),
  project_id: Type.Optional(Id),
  defect_id: Type.Optional(Id),
  user_id: Type.Optional(Id),
  from: Type.Optional(Type.String({ format: 'date-time', description: 'events at or after (ISO 8601)' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'events before (ISO 8601)' })),
};

export const EventListQuery = Type.Object({ ...PageQuery, ...EventFilterQuery }, { additionalProperties: false });

export const StreamQuery = Type.Object(
  {
    ...EventFilterQuery,
    // Text, checked by the route as the header is: a bad value is the same 400 either way.
    last_event_id: Type.Optional(
      Type.String({ maxLength: 40, description: 'resume after this stream id (or send Last-Event-ID)' }),
    ),
  },
  { additionalProperties: false },
);

export const EventSchema = Type.Object({
  event_id: Type.String(),
  event_type: Type.String(),
  data: Type.Record(Type.String(), Type.Unknown()),
  user_id: Type.Union([Type.Integer(), Type.Null()]),
  timestamp: Type.String(),
});

export const DeliverySchema = Type.Object({
  consumer: Type.String(),
  status: StringEnum(['handled', 'retrying', 'parked'] as const),
  attempt: Type.Integer(),
  next_attempt_at: Type.Union([Timestamp, Type.Null()]),
  last_error: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  reported_at: Timestamp,
});

export const EventDetailSchema = Type.Object({
  event: EventSchema,
  deliveries: Type.Optional(
    Type.Array(DeliverySchema, { description: 'admins only: the event at each consumer that reported it' }),
  ),
});

export const EventIdParams = Type.Object({
  event_id: Type.String({
    pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
    description: 'uuid',
  }),
});

export const DefectIdParams = Type.Object({ id: Id });
export const HistoryQuery = Type.Object(PageQuery, { additionalProperties: false });
