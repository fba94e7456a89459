import { z } from 'zod';

// CR or LF in a header value would let a caller add headers of their own (header injection).
const noLineBreaks = (what: string) => z.string().refine((s) => !/[\r\n]/.test(s), { message: `${what} must not contain CR or LF` });

/** One plain address (`name@example.com`); display names are not accepted. */
export const emailAddress = z.email({ error: 'an email address (name@example.com)' }).max(254);

const addressList = (max: number) => z.array(emailAddress).min(1).max(max);

/** Header names a client may set; everything else is decided by the mailer. */
export const allowedHeaderNames = [
  'reply-to',
  'list-unsubscribe',
  'list-unsubscribe-post',
  'list-id',
  'in-reply-to',
  'references',
] as const;
const headerName = z
  .string()
  .regex(/^[A-Za-z0-9-]{1,64}$/, 'a header name')
  .refine((n) => n.toLowerCase().startsWith('x-') || (allowedHeaderNames as readonly string[]).includes(n.toLowerCase()), {
    message: `allowed headers: X-*, ${allowedHeaderNames.join(', ')}`,
  });

/** Longest time ahead a message may be scheduled. */
export const MAX_SCHEDULE_MS = 5 * 366 * 24 * 3600 * 1000;
export const MAX_METADATA_BYTES = 4096;

/**
 * An email request, as the REST API and the `mailer.email.send` task take it. Strict: unknown
 * fields are errors, so a typo never silently drops a field.
 */
export const emailRequest = z
  .strictObject({
    to: z.union([emailAddress.transform((a) => [a]), addressList(50)]),
    cc: addressList(50).optional(),
    bcc: addressList(50).optional(),
    from: emailAddress.optional(),
    subject: noLineBreaks('subject').pipe(z.string().min(1).max(998)),
    text: z.string().max(1_000_000).optional(),
    html: z.string().max(1_000_000).optional(),
    headers: z.record(headerName, noLineBreaks('a header value').pipe(z.string().max(998))).optional(),
    send_at: z.iso
      .datetime({ offset: true, error: 'an ISO 8601 date-time with a time zone (2027-01-31T08:00:00Z)' })
      .refine((s) => Date.parse(s) - Date.now() <= MAX_SCHEDULE_MS, { message: 'at most 5 years ahead' })
      .optional(),
    check_url: z
      .url({ protocol: /^https?$/, error: 'an http(s) URL' })
      .max(2048)
      .optional(),
    metadata: z
      .record(z.string(), z.json())
      .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= MAX_METADATA_BYTES, { message: `at most ${MAX_METADATA_BYTES} bytes of JSON` })
      .optional(),
  })
  .refine((m) => m.text !== undefined || m.html !== undefined, { message: 'text or html is required', path: ['text'] });

export type EmailRequest = z.input<typeof emailRequest>;
export type ParsedEmailRequest = z.output<typeof emailRequest>;

/** Where a message is in its life. */
export const emailStatuses = ['scheduled', 'sending', 'retrying', 'sent', 'dead', 'skipped', 'cancelled'] as const;
export type EmailStatus = (typeof emailStatuses)[number];
