/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive). */
export function bearerOf(authorization: string | undefined): string | undefined {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? "");
  return match?.[1];
}
