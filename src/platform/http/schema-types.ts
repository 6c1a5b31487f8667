import { Type, type TSchema } from '@sinclair/typebox';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;
/** Deep offsets make the database count and skip every row before them; filters reach further. */
export const MAX_OFFSET = 10_000;

export const PageQuery = {
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }),
  offset: Type.Integer({ minimum: 0, maximum: MAX_OFFSET, default: 0 }),
};

/** `{items, total, limit, offset}`: a page and the count of everything that matched. */
export const Page = <Item extends TSchema>(item: Item) =>
  Type.Object({
    items: Type.Array(item),
    total: Type.Integer({ description: 'all items matching the filters' }),
    limit: Type.Integer(),
    offset: Type.Integer(),
  });

/** One of fixed strings, as a JSON-schema enum (clear errors and OpenAPI, unlike a union of literals). */
export const StringEnum = <const Values extends readonly string[]>(
  values: Values,
  options: { description?: string } = {},
) => Type.Unsafe<Values[number]>({ type: 'string', enum: [...values], ...options });

/** A timestamp column: a Date in code, ISO 8601 on the wire. */
export const Timestamp = Type.Unsafe<Date>({ type: 'string', format: 'date-time' });
