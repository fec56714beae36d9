// Connecting the unlocked vault to the organisation's server: its address, the CA certificate to
// pin, and the user's sign-in (password and the authenticator app's code). Presentation only.
import { api } from "./api";
import { h } from "./dom";
import { t } from "./i18n";

/** The connect form; with `firstRun`, the first-run form, which also sets the new vault's password
 * and makes the vault (nothing is kept when the server refuses). */
export function showConnect(
  container: HTMLElement,
  user: string,
  showError: (e: unknown) => void,
  connected: () => void,
  firstRun = false,
  server: { address: string; ca_pem: string } | null = null,
): void {
  const field = (id: string, label: string, input: HTMLElement) => h("label", { for: id }, label, input);
  // Signing in again: the server this vault syncs with is known.
  const address = h("input", {
    id: "connect-address",
    type: "url",
    required: true,
    placeholder: "https://records.example:8443",
    value: server?.address ?? "",
  });
  const ca = h("textarea", { id: "connect-ca", rows: 6, required: true, placeholder: "-----BEGIN CERTIFICATE-----" });
  ca.value = server?.ca_pem ?? "";
  const username = h("input", { id: "connect-user", type: "text", required: true, value: user, autocomplete: "username" });
  const password = h("input", { id: "connect-password", type: "password", required: true, autocomplete: "current-password" });
  const code = h("input", { id: "connect-code", type: "text", required: true, inputmode: "numeric", autocomplete: "one-time-code" });
  const device = h("input", { id: "connect-device", type: "text", required: true, value: t("connect.deviceDefault") });
  const vaultPassword = h("input", { id: "setup-vault-password", type: "password", required: true, autocomplete: "new-password" });
  const vaultRepeat = h("input", { id: "setup-vault-repeat", type: "password", required: true, autocomplete: "new-password" });
  const message = h("p", { id: "connect-message", class: "muted", role: "status" });
  const submit = h("button", { id: "connect-submit", type: "submit" }, firstRun ? t("setup.submit") : t("connect.submit"));
  const form = h(
    "form",
    { id: "connect-form", class: "connect" },
    h("h2", {}, firstRun ? t("setup.title") : t("connect.title")),
    h("p", { class: "muted" }, firstRun ? t("setup.explain") : t("connect.explain")),
    field("connect-address", t("connect.address"), address),
    field("connect-ca", t("connect.ca"), ca),
    field("connect-user", t("connect.user"), username),
    field("connect-password", t("connect.password"), password),
    field("connect-code", t("connect.code"), code),
    field("connect-device", t("connect.device"), device),
    ...(firstRun
      ? [
          field("setup-vault-password", t("setup.vaultPassword"), vaultPassword),
          field("setup-vault-repeat", t("setup.vaultRepeat"), vaultRepeat),
        ]
      : []),
    submit,
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (firstRun && vaultPassword.value !== vaultRepeat.value) {
      message.textContent = t("setup.mismatch");
      vaultRepeat.select();
      return;
    }
    submit.disabled = true;
    message.textContent = t("connect.working");
    try {
      const request = {
        address: address.value,
        ca_pem: ca.value,
        username: username.value,
        password: password.value,
        code: code.value,
        device_name: device.value,
      };
      const name = firstRun
        ? await api.setUpWorkstation({ ...request, vault_password: vaultPassword.value })
        : await api.connectServer(request);
      password.value = "";
      vaultPassword.value = "";
      vaultRepeat.value = "";
      code.value = "";
      message.textContent = t("connect.done", { name });
      connected();
    } catch (e) {
      message.textContent = "";
      code.value = "";
      showError(e);
    } finally {
      submit.disabled = false;
    }
  });
  container.replaceChildren(form);
  (server ? password : address).focus();
}
