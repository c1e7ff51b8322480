import type { Current } from "./reloading-file.js";

/** Platform sign-in tokens (e.g. Supabase's): against what the handler verifies them. */
export interface JwtSettings {
  /** The issuer's JSON Web Key Set (RS256, ES256, EdDSA); unset: HS256 only. */
  jwksUrl: string | undefined;
  issuer: string;
  audience: string;
  /** How often the key set is refreshed, and the least time between two fetches for a new kid. */
  refreshMs: number;
  /** The claim naming the client's plan, as a path into the payload (`app_metadata.plan`). */
  planClaim: string[] | undefined;
  /** The shared HS256 secret (JWT_SECRET_FILE), re-read like the other credential files. */
  secret: Current<string> | undefined;
}
