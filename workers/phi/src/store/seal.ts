import { decryptField, encryptField, type Keyring } from "../../../../shared/crypto";

/**
 * A resource body sealed with AES-256-GCM under the current key (HIPAA
 * 164.312(a)(2)(iv)). The AAD binds the ciphertext to its type, id and version,
 * so a sealed body copied onto another row does not decrypt.
 */
function aad(type: string, id: string, versionId: number): string {
  return `phi/${type}/${id}/${versionId}`;
}

export function seal(ring: Keyring, type: string, id: string, versionId: number, body: object): Promise<string> {
  return encryptField(ring, JSON.stringify(body), aad(type, id, versionId));
}

export async function unseal(ring: Keyring, type: string, id: string, versionId: number, sealed: string): Promise<Record<string, unknown>> {
  return JSON.parse(await decryptField(ring, sealed, aad(type, id, versionId))) as Record<string, unknown>;
}
