// The confirmation dialog: a native modal <dialog> (focus stays inside, Escape cancels), focus returned
// to what opened it.

import { $, h } from "./dom.js";

/** Ask before acting. Resolves true when confirmed, false when cancelled (button, Escape). */
export function confirmDialog({ title, body, confirmLabel, danger = false }) {
  const dialog = $("#confirm-dialog");
  const opener = document.activeElement;
  $("#confirm-title").textContent = title;
  $("#confirm-body").replaceChildren(...(Array.isArray(body) ? body : [h("p", {}, body)]));
  const ok = $("#confirm-ok");
  ok.textContent = confirmLabel;
  ok.className = danger ? "danger" : "primary";
  return new Promise((resolve) => {
    const finish = (confirmed) => {
      dialog.removeEventListener("close", onClose);
      ok.removeEventListener("click", onOk);
      resolve(confirmed);
    };
    const onOk = () => {
      dialog.returnValue = "ok";
      dialog.close();
    };
    const onClose = () => {
      finish(dialog.returnValue === "ok");
      restoreFocus(opener);
    };
    dialog.returnValue = "";
    ok.addEventListener("click", onOk);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    $("#confirm-cancel").focus();
  });
}

/** Give focus back to `element` if it is still on the page, else to the main region. */
export function restoreFocus(element) {
  if (element && document.contains(element) && !element.disabled) element.focus();
  else $("#main").focus();
}

export function wireCancelButtons() {
  for (const button of document.querySelectorAll("[data-close-dialog]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
}
