import { decryptField, encryptField, hmacHex, parseKeyring, randomToken, type Keyring } from "../../../../shared/crypto";
import { tenantRing } from "../../../../shared/keys/tenant-keys";
import type { RequestInfo } from "../context";
import type { Brand } from "../domain/card";
import type { PaymentMethodView } from "../schemas/payment-method";

export interface PaymentMethodRow {
  id: string;
  brand: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  fingerprint: string;
  number_enc: string;
  created_at: string;
}

/** Associated data binds each ciphertext to its row and column: it cannot be moved elsewhere. */
const numberAad = (id: string) => `payment_methods.number_enc:${id}`;
const holderAad = (id: string) => `payment_methods.holder_name_enc:${id}`;

/**
 * Keyed fingerprint of a card number: the same card gives the same value,
 * and without the key it cannot be brute-forced back (PCI-DSS 3.5.1.1).
 */
export async function fingerprint(secret: string, number: string): Promise<string> {
  return (await hmacHex(secret, `card-fingerprint\u0000${number}`)).slice(0, 32);
}

/**
 * The caller's tenant's vault keyring: its own data key (wrapped by CARD_ENCRYPTION_KEYS, destroyed when
 * the tenant is offboarded) encrypts; the platform keys still decrypt cards sealed before data keys existed.
 */
async function vaultRing(info: RequestInfo): Promise<Keyring> {
  const platform = await parseKeyring(info.config.CARD_ENCRYPTION_KEYS);
  return tenantRing({ db: info.db, service: "payments", database: "DB", platform, tenant: info.principal.tenantId });
}

export interface TokenizedCard {
  view: PaymentMethodView;
  statement: D1PreparedStatement;
}

/**
 * Seals a validated card into the vault (PCI-DSS 3.5.1: the number only as
 * AES-256-GCM ciphertext, under the tenant's data key). Returns the insert for the caller's batch. The CVC
 * is not a parameter: it can never reach storage (PCI-DSS 3.3.1.2).
 */
export async function tokenize(
  info: RequestInfo,
  card: { number: string; brand: Brand; last4: string; expMonth: number; expYear: number },
  holderName?: string,
): Promise<TokenizedCard> {
  const id = randomToken(16, "pm_");
  const ring = await vaultRing(info);
  const numberEnc = await encryptField(ring, card.number, numberAad(id));
  const holderEnc = holderName ? await encryptField(ring, holderName, holderAad(id)) : null;
  const fp = await fingerprint(info.config.CARD_FINGERPRINT_KEY, card.number);
  const at = info.now.toISOString();
  const statement = info.db
    .prepare(
      `INSERT INTO payment_methods (id, tenant_id, brand, last4, exp_month, exp_year, fingerprint, number_enc, holder_name_enc, created_at, created_by, created_by_client)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(id, info.principal.tenantId, card.brand, card.last4, card.expMonth, card.expYear, fp, numberEnc, holderEnc, at, info.principal.sub, info.principal.clientId);
  const view: PaymentMethodView = {
    id,
    object: "payment_method",
    brand: card.brand,
    last4: card.last4,
    exp_month: card.expMonth,
    exp_year: card.expYear,
    fingerprint: fp,
    created_at: at,
  };
  return { view, statement };
}

/** A token of the caller's tenant only: another tenant's token reads as missing (and can never be charged). */
export function getPaymentMethod(db: D1Database, tenantId: string, id: string): Promise<PaymentMethodRow | null> {
  return db
    .prepare("SELECT id, brand, last4, exp_month, exp_year, fingerprint, number_enc, created_at FROM payment_methods WHERE id = ? AND tenant_id = ?")
    .bind(id, tenantId)
    .first<PaymentMethodRow>();
}

export function paymentMethodView(row: PaymentMethodRow): PaymentMethodView {
  return {
    id: row.id,
    object: "payment_method",
    brand: row.brand,
    last4: row.last4,
    exp_month: row.exp_month,
    exp_year: row.exp_year,
    fingerprint: row.fingerprint,
    created_at: row.created_at,
  };
}

/** The only way out of the vault: to the processor, for an authorization. */
export async function revealNumber(info: RequestInfo, row: PaymentMethodRow): Promise<string> {
  const ring = await vaultRing(info);
  return decryptField(ring, row.number_enc, numberAad(row.id));
}
