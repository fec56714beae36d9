// Signing keys and trust: create a key (its certificate request is shown to send to the CA),
// import the certificate the CA issued, trust the organisation's root. Presentation only.
import { api, type KeyAlgorithm, type SigningKeyInfo } from "./api";
import { h } from "./dom";
import { formatDate } from "./format";
import { locale, t } from "./i18n";

export async function showKeys(container: HTMLElement, showError: (e: unknown) => void): Promise<void> {
  // A vault that syncs asks the organisation's CA on the server directly.
  const syncs = (await api.syncState()) !== null;
  const message = h("p", { id: "keys-message", class: "muted", role: "status" });
  const list = h("ul", { id: "key-list", class: "list" });

  function keyItem(key: SigningKeyInfo): HTMLElement {
    const certificate = h("textarea", { class: "certificate-pem", rows: 4, placeholder: t("keys.certificatePlaceholder") });
    const importButton = h("button", { type: "button", class: "import-certificate" }, t("keys.import"));
    importButton.addEventListener("click", async () => {
      try {
        await api.importCertificate(key.id, certificate.value);
        message.textContent = t("keys.imported");
        await refresh();
      } catch (e) {
        showError(e);
      }
    });
    const requestButton = h("button", { type: "button", class: "request-certificate", hidden: !syncs }, t("keys.requestFromCa"));
    requestButton.addEventListener("click", async () => {
      try {
        message.textContent = t("keys.working");
        const requested = await api.requestCertificate(key.id);
        message.textContent = requested.subject ? t("keys.imported") : t("keys.requestWaits");
        await refresh();
      } catch (e) {
        showError(e);
      }
    });
    const validity =
      key.not_before_ms !== null && key.not_after_ms !== null
        ? t("keys.validity", { from: formatDate(key.not_before_ms, locale()), to: formatDate(key.not_after_ms, locale()) })
        : "";
    return h(
      "li",
      { "data-key-id": key.id, "data-ready": key.subject ? "yes" : "no" },
      h("span", { class: "title" }, `${key.label} · ${key.algorithm}`),
      key.subject
        ? h("span", { class: "meta" }, `${key.subject} · ${t("keys.serial")} ${key.serial ?? ""} · ${validity}`)
        : h(
            "div",
            { class: "awaiting" },
            h("span", { class: "meta" }, t("keys.awaiting")),
            key.certificate_requested ? h("span", { class: "meta request-waits" }, t("keys.requestWaits")) : null,
            key.certificate_refusal
              ? h("span", { class: "meta request-refused" }, t("keys.requestRefused", { reason: key.certificate_refusal }))
              : null,
            requestButton,
            h("textarea", { class: "request-pem", rows: 6, readonly: true }, key.request_pem),
            certificate,
            importButton,
          ),
    );
  }

  async function refresh(): Promise<void> {
    const keys = await api.listSigningKeys();
    list.replaceChildren(...keys.map(keyItem));
    if (keys.length === 0) list.append(h("li", { class: "muted empty" }, t("keys.none")));
  }

  const label = h("input", { id: "key-label", type: "text", value: t("keys.defaultLabel") });
  const commonName = h("input", { id: "key-name", type: "text", placeholder: t("keys.namePlaceholder") });
  const algorithm = h(
    "select",
    { id: "key-algorithm" },
    h("option", { value: "ecdsa_p256", selected: true }, "ECDSA P-256"),
    h("option", { value: "rsa3072" }, "RSA-3072"),
  );
  const createForm = h(
    "form",
    { id: "key-create", class: "card wide" },
    h("h3", {}, t("keys.create")),
    h("label", {}, t("keys.label"), label),
    h("label", {}, t("keys.name"), commonName),
    h("label", {}, t("keys.algorithm"), algorithm),
    h("button", { type: "submit" }, t("keys.createButton")),
  );
  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      message.textContent = t("keys.working");
      await api.createSigningKey(label.value.trim(), algorithm.value as KeyAlgorithm, commonName.value.trim());
      message.textContent = t("keys.created");
      await refresh();
    } catch (e) {
      showError(e);
    }
  });

  const anchor = h("textarea", { id: "anchor-pem", rows: 4, placeholder: t("keys.anchorPlaceholder") });
  const anchorForm = h(
    "form",
    { id: "anchor-add", class: "card wide" },
    h("h3", {}, t("keys.anchors")),
    anchor,
    h("button", { type: "submit" }, t("keys.trust")),
  );
  anchorForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const subject = await api.addTrustAnchor(anchor.value);
      message.textContent = t("keys.trusted", { subject });
      anchor.value = "";
    } catch (e) {
      showError(e);
    }
  });

  container.replaceChildren(h("h2", {}, t("keys.heading")), message, list, createForm, anchorForm);
  await refresh();
}
