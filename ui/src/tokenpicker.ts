// Choosing what signs: a key in the vault, or a key on a hardware token (slot, PIN, key).
// Presentation only; the PIN goes to the engine and is not kept here after signing.
import { api, type SigningKeyInfo, type TokenChoice } from "./api";
import { h } from "./dom";
import { t } from "./i18n";

export interface SignerPicker {
  element: HTMLElement;
  /** The chosen vault key id, when a vault key is chosen. */
  vaultKey(): string | null;
  /** The chosen token key with its PIN, when a token is chosen. */
  token(): TokenChoice | null;
  /** Forgets the PIN. */
  clearPin(): void;
}

export async function signerPicker(idPrefix: string, showError: (e: unknown) => void): Promise<SignerPicker> {
  const keys: SigningKeyInfo[] = (await api.listSigningKeys()).filter((k) => k.subject);
  const source = h(
    "select",
    { id: `${idPrefix}-source` },
    h("option", { value: "vault" }, t("sign.sourceVault")),
    h("option", { value: "token" }, t("sign.sourceToken")),
  );
  const vaultKey = h("select", { id: `${idPrefix}-key` }, ...keys.map((k) => h("option", { value: k.id }, `${k.label} (${k.subject})`)));
  const slot = h("select", { id: `${idPrefix}-token` });
  const pin = h("input", { id: `${idPrefix}-pin`, type: "password", autocomplete: "off", "aria-label": t("sign.pin") });
  const tokenKey = h("select", { id: `${idPrefix}-token-key` });
  const load = h("button", { type: "button", id: `${idPrefix}-token-load` }, t("sign.showKeys"));
  const vaultPart = h("label", {}, t("sign.key"), vaultKey);
  const tokenPart = h(
    "div",
    { class: "token-part", hidden: true },
    h("label", {}, t("sign.token"), slot),
    h("label", {}, t("sign.pin"), pin),
    load,
    h("label", {}, t("sign.key"), tokenKey),
  );
  source.addEventListener("change", async () => {
    const onToken = source.value === "token";
    vaultPart.hidden = onToken;
    tokenPart.hidden = !onToken;
    if (onToken && slot.options.length === 0) {
      try {
        const tokens = await api.listTokens();
        slot.replaceChildren(...tokens.map((tk) => h("option", { value: tk.slot }, `${tk.label} (${tk.manufacturer} ${tk.serial})`)));
      } catch (e) {
        showError(e);
      }
    }
  });
  load.addEventListener("click", async () => {
    try {
      const found = await api.tokenKeys(Number(slot.value), pin.value);
      tokenKey.replaceChildren(...found.map((k) => h("option", { value: k.id }, `${k.label} (${k.subject})`)));
    } catch (e) {
      showError(e);
    }
  });
  return {
    element: h("div", { class: "signer-picker" }, h("label", {}, t("sign.source"), source), vaultPart, tokenPart),
    vaultKey: () => (source.value === "vault" && vaultKey.value ? vaultKey.value : null),
    token: () =>
      source.value === "token" && tokenKey.value ? { slot: Number(slot.value), key: tokenKey.value, pin: pin.value } : null,
    clearPin: () => {
      pin.value = "";
    },
  };
}
