import type { Kube } from "../../shared/kube/client.js";
import {
  type CodeInstance,
  type CodePurpose,
  codeManifest,
  codeObjectName,
  isCodeExpired,
  isCodeShaped,
  newCode,
} from "../../shared/tokens/signin-code.js";

export type { CodeInstance, CodePurpose } from "../../shared/tokens/signin-code.js";

/** A freshly minted code: hand `code` to the client once; only its hash is kept. */
export interface MintedCode {
  code: string;
  expiresAt: Date;
}

/**
 * One-time codes for any replica to mint and any replica to redeem: login links
 * (`login`) and preview links (`preview:<port>`). A code redeems only for the purpose it
 * was minted for, once, before it expires. What a redeemed code names is the instance as it
 * was when the code was minted: the caller checks it still exists with that uid.
 */
export class SigninCodes {
  constructor(
    private readonly kube: Kube,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A new code for `instance` (one write). */
  async mint(instance: CodeInstance, purpose: CodePurpose, ttlMs: number): Promise<MintedCode> {
    const expiresAt = new Date(this.now().getTime() + ttlMs);
    // 256 random bits never collide in practice; a 409 would mean the draw repeated.
    for (let attempt = 0; attempt < 3; attempt++) {
      const code = newCode();
      if (await this.kube.codes.create(codeManifest(code, instance, purpose, expiresAt))) {
        return { code, expiresAt };
      }
    }
    throw new Error("could not store a new sign-in code");
  }

  /**
   * Consumes a code: the instance it was minted for, or undefined when the code is
   * malformed, unknown, already used, expired or for another purpose (one answer for all,
   * so a caller learns nothing about which). One read, and one delete for a live code.
   */
  async redeem(code: string, purpose: CodePurpose): Promise<CodeInstance | undefined> {
    return this.redeemWith(code, purpose, async (instance) => instance);
  }

  /**
   * `redeem`, with `alongside` run for the code's instance at the same time as the delete
   * that consumes the code (a read the caller needs anyway, such as the instance's
   * ClientPod), saving a round trip; its result counts only if this call consumed the code.
   */
  async redeemWith<T>(
    code: string,
    purpose: CodePurpose,
    alongside: (instance: CodeInstance) => Promise<T>,
  ): Promise<T | undefined> {
    if (!isCodeShaped(code)) return undefined;
    const name = codeObjectName(code);
    // From the API server's cache; a code minted a moment ago may not be there yet, so a
    // miss is read once more from etcd. Either way the delete below decides.
    const record =
      (await this.kube.codes.get(name, { fromCache: true })) ?? (await this.kube.codes.get(name));
    // Another purpose's code stays valid for its own use; an expired one is the reaper's.
    if (!record || record.purpose !== purpose || isCodeExpired(record, this.now())) {
      return undefined;
    }
    // The delete is the one atomic step: whoever deletes the object read above wins.
    const [consumed, result] = await Promise.all([
      this.kube.codes.delete(name, { uid: record.objectUid }),
      alongside(record.instance),
    ]);
    return consumed === "deleted" ? result : undefined;
  }
}
